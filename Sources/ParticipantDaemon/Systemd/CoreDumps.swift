import CParticipantProcess
import Foundation

/// The daemon's memory holds connection tokens, participant tokens and the fleet's password: none
/// of it goes into a core dump (systemd-coredump keeps them in the journal's storage, readable by
/// administrators for weeks). The watchdog's SIGABRT would otherwise write one.
public enum CoreDumps {
    /// Turns core dumps off for this process (RLIMIT_CORE 0, non-dumpable), before anything secret
    /// is read (the configuration first). Returns why it failed, for the log once there is one;
    /// the daemon goes on (the unit's `LimitCORE=0` still holds).
    public static func disable() -> String? {
        let error = participant_disable_core_dumps()
        return error == 0 ? nil : String(cString: strerror(error))
    }

    /// Whether this process may be dumped now.
    public static var dumpable: Bool { participant_is_dumpable() == 1 }
}
