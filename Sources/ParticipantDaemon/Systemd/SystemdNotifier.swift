import Foundation
import ParticipantAPI
import ParticipantDelivery
import ParticipantOutbox
import ParticipantWire

/// systemd's notification protocol (`sd_notify(3)`): one datagram of `KEY=value` lines to the
/// socket named by `$NOTIFY_SOCKET`. Without that variable (not started by systemd with
/// `Type=notify`) every call does nothing.
///
/// Written by hand: the protocol is a single `sendto`, and libsystemd would be one more C library
/// to install and link for it.
public struct SystemdNotifier: Sendable {
    /// The socket's path; a leading `@` names an abstract socket. `nil`: not under systemd.
    public let socketPath: String?
    /// `WatchdogSec=` as systemd passed it in `$WATCHDOG_USEC` (for this process), or `nil`.
    public let watchdogInterval: Duration?

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        socketPath = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
        // WATCHDOG_PID, when set, names the process the watchdog is meant for.
        let forUs = environment["WATCHDOG_PID"].map { Int32($0) == getpid() } ?? true
        if forUs, let microseconds = environment["WATCHDOG_USEC"].flatMap(Int64.init), microseconds > 0 {
            watchdogInterval = .microseconds(microseconds)
        } else {
            watchdogInterval = nil
        }
    }

    public var isActive: Bool { socketPath != nil }

    /// `READY=1`: the socket is listening and the outbox is open.
    public func ready(status: String) { send("READY=1\nSTATUS=\(status)") }
    /// `STOPPING=1`: a graceful shutdown began.
    public func stopping(status: String) { send("STOPPING=1\nSTATUS=\(status)") }
    /// `STATUS=`: a line `systemctl status` shows.
    public func status(_ status: String) { send("STATUS=\(status)") }
    /// `WATCHDOG=1`: the daemon is alive.
    public func watchdog() { send("WATCHDOG=1") }
    /// `RELOADING=1` before a reload, `READY=1` after it.
    public func reloading() { send("RELOADING=1") }

    /// Sends one datagram; failures are ignored, as `sd_notify` callers do (systemd may be gone).
    @discardableResult
    public func send(_ message: String) -> Bool {
        guard let socketPath else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        guard let address = UnixSocketAddress(path: socketPath) else { return false }
        let bytes = Array(message.utf8)
        let sent = address.withSocketAddress { socketAddress, length in
            sendto(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL), socketAddress, length)
        }
        return sent == bytes.count
    }
}
