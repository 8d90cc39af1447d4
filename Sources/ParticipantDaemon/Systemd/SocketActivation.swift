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
        // Every peer must be named: a Unix socket's by SO_PEERCRED, a loopback TCP client's by the
        // kernel's socket diagnostics. Any other socket's peers could not be.
        switch intOption(fd, SO_DOMAIN) {
        case Int32(AF_UNIX):
            break
        case Int32(AF_INET), Int32(AF_INET6):
            guard isBoundToLoopback(fd) else {
                throw ConfigurationError(key: "LISTEN_FDS", rule: "the TCP socket systemd passed is not bound to a loopback address: its peers could not be named (ListenStream= in participantd.socket)")
            }
        default:
            throw ConfigurationError(key: "LISTEN_FDS", rule: "the socket systemd passed is neither a Unix socket nor loopback TCP (ListenStream= in participantd.socket)")
        }
        return fd
    }

    /// Whether a TCP socket is bound to 127.0.0.0/8 or ::1 (not to a wildcard).
    static func isBoundToLoopback(_ fd: CInt) -> Bool {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard result == 0 else { return false }
        switch Int32(storage.ss_family) {
        case AF_INET:
            let address = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in.self) }
            return UInt32(bigEndian: address.sin_addr.s_addr) >> 24 == 127
        case AF_INET6:
            var address = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in6.self) }
            return withUnsafeBytes(of: &address.sin6_addr) { Array($0) } == [UInt8](repeating: 0, count: 15) + [1]
        default:
            return false
        }
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
