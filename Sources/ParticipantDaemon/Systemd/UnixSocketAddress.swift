import Foundation

/// A Unix socket's address for `connect(2)` and `sendto(2)`: the path in `sun_path`, or an
/// abstract name for a path starting with `@` (its first byte NUL, as systemd writes it).
struct UnixSocketAddress {
    var address = sockaddr_un()
    /// The family and the name's bytes (with the path's closing NUL): what the calls are given.
    let length: socklen_t

    /// `nil` when the path does not fit `sun_path`.
    init?(path: String) {
        var bytes = Array(path.utf8)
        let isAbstract = bytes.first == UInt8(ascii: "@")
        if isAbstract { bytes[0] = 0 }
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (isAbstract ? 0 : 1))
    }

    /// Calls `body` with the address as a `sockaddr` and its length.
    func withSocketAddress<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        withUnsafePointer(to: address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
        }
    }
}
