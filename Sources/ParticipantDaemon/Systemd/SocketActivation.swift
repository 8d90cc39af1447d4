import Foundation
import ParticipantAPI
import ParticipantDelivery
import ParticipantOutbox
import ParticipantWire

/// systemd's socket activation (`sd_listen_fds(3)`): the listening sockets systemd opened for
/// this process, passed from descriptor 3 on, announced by `$LISTEN_FDS` and `$LISTEN_PID`.
public enum SocketActivation {
    /// The first descriptor systemd passes.
    static let firstDescriptor: CInt = 3

    /// The listening Unix stream socket systemd passed to this process, or `nil` when none was
    /// (the daemon then binds its own). A passed descriptor of another kind is an error: the
    /// `.socket` unit does not match the daemon.
    public static func listeningSocket(environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigurationError) -> CInt? {
        guard let pid = environment["LISTEN_PID"].flatMap(Int32.init), pid == getpid(),
              let count = environment["LISTEN_FDS"].flatMap(Int.init), count > 0
        else { return nil }
        // As sd_listen_fds(..., unset_environment=1): a program this one starts must not take them.
        unsetenv("LISTEN_PID")
        unsetenv("LISTEN_FDS")
        unsetenv("LISTEN_FDNAMES")
        guard count == 1 else {
            throw ConfigurationError(key: "LISTEN_FDS", rule: "systemd passed \(count) sockets; participantd takes one (one ListenStream= in participantd.socket)")
        }
        let fd = firstDescriptor
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        guard intOption(fd, SO_TYPE) == Int32(SOCK_STREAM.rawValue), intOption(fd, SO_ACCEPTCONN) == 1 else {
            throw ConfigurationError(key: "LISTEN_FDS", rule: "the socket systemd passed is not a listening stream socket (ListenStream= in participantd.socket)")
        }
        return fd
    }

    /// The path a passed Unix socket is bound to, for the log; `nil` for an unnamed or non-Unix one.
    public static func boundPath(of fd: CInt) -> String? {
        var address = sockaddr_un()
        var length = socklen_t(MemoryLayout<sockaddr_un>.size)
        let result = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard result == 0, address.sun_family == sa_family_t(AF_UNIX) else { return nil }
        let path = withUnsafeBytes(of: address.sun_path) { bytes in
            String(decoding: bytes.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        return path.isEmpty ? nil : path
    }

    private static func intOption(_ fd: CInt, _ name: Int32) -> Int32? {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        return getsockopt(fd, SOL_SOCKET, name, &value, &length) == 0 ? value : nil
    }
}
