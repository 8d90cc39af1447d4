import Foundation
import NIOCore

/// The user that owns the client's end of a loopback TCP connection, as the kernel's socket
/// diagnostics say (`NETLINK_SOCK_DIAG`, `sock_diag(7)`): one request naming the exact socket
/// (its local and remote address and port), answered from the kernel's socket hash in constant
/// time, however many connections are open.
///
/// Written by hand: no library here speaks netlink, and `/proc/net/tcp` (the other source) lists
/// every socket of the host on each read, which a peer opening a thousand connections would make
/// cost a thousand full listings.
enum SocketDiagnostics {
    // linux/netlink.h, linux/sock_diag.h, linux/inet_diag.h.
    static let netlinkSockDiag: Int32 = 4
    static let sockDiagByFamily: UInt16 = 20
    static let requestFlag: UInt16 = 1
    static let errorMessage: UInt16 = 2
    static let headerSize = 16
    /// `struct inet_diag_req_v2`.
    static let requestSize = 56
    /// `struct inet_diag_msg` up to and including `idiag_uid`.
    static let answerUIDOffset = 64

    /// One end of a TCP connection: its address family (`AF_INET` or `AF_INET6`), its address in
    /// network order (4 or 16 bytes), and its port.
    struct Endpoint: Equatable, Sendable {
        var family: Int32
        var address: [UInt8]
        var port: UInt16

        init(family: Int32, address: [UInt8], port: UInt16) {
            self.family = family
            self.address = address
            self.port = port
        }

        init?(_ socketAddress: SocketAddress?) {
            switch socketAddress {
            case .v4(let address)?:
                var raw = address.address.sin_addr
                self.init(family: AF_INET, address: withUnsafeBytes(of: &raw) { Array($0) }, port: UInt16(bigEndian: address.address.sin_port))
            case .v6(let address)?:
                var raw = address.address.sin6_addr
                self.init(family: AF_INET6, address: withUnsafeBytes(of: &raw) { Array($0) }, port: UInt16(bigEndian: address.address.sin6_port))
            default:
                return nil
            }
        }

        /// 127.0.0.0/8, ::1, or ::ffff:127.0.0.0/104.
        var isLoopback: Bool {
            if family == AF_INET { return address.first == 127 }
            if address == [UInt8](repeating: 0, count: 15) + [1] { return true }
            return address.prefix(12) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF] && address[12] == 127
        }
    }

    /// Why a connection's peer could not be named.
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The request for the socket whose local end is `local` and remote end `remote`
    /// (`SOCK_DIAG_BY_FAMILY`, an exact look-up: no dump, no cookie).
    static func request(local: Endpoint, remote: Endpoint, sequence: UInt32) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(headerSize + requestSize)
        func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value) { bytes.append(contentsOf: $0) } }
        func appendAddress(_ address: [UInt8]) { bytes.append(contentsOf: address + [UInt8](repeating: 0, count: 16 - address.count)) }
        // struct nlmsghdr
        append(UInt32(headerSize + requestSize))
        append(sockDiagByFamily)
        append(requestFlag)
        append(sequence)
        append(UInt32(0))
        // struct inet_diag_req_v2
        bytes.append(UInt8(local.family))
        bytes.append(UInt8(IPPROTO_TCP))
        bytes.append(0)  // idiag_ext
        bytes.append(0)  // pad
        append(UInt32.max)  // idiag_states: any
        // struct inet_diag_sockid: ports and addresses in network order
        append(local.port.bigEndian)
        append(remote.port.bigEndian)
        appendAddress(local.address)
        appendAddress(remote.address)
        append(UInt32(0))  // idiag_if
        append(UInt32.max)  // idiag_cookie: INET_DIAG_NOCOOKIE
        append(UInt32.max)
        return bytes
    }

    /// The uid in the kernel's answer, or why there is none.
    static func owner(inAnswer bytes: [UInt8], sequence: UInt32) -> Result<UInt32, Failure> {
        func read<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T? {
            guard offset + MemoryLayout<T>.size <= bytes.count else { return nil }
            return bytes[offset..<(offset + MemoryLayout<T>.size)].withUnsafeBytes { $0.loadUnaligned(as: T.self) }
        }
        guard let type = read(UInt16.self, at: 4), read(UInt32.self, at: 8) == sequence else {
            return .failure(Failure(description: "the kernel's socket diagnostics gave no answer to the request"))
        }
        if type == errorMessage {
            let code = read(Int32.self, at: headerSize) ?? 0
            return .failure(Failure(description: code == -ENOENT
                ? "the client's end of the connection is not on this host's loopback (or it closed)"
                : "the kernel's socket diagnostics refused the request (\(String(cString: strerror(-code))))"))
        }
        guard type == sockDiagByFamily, let uid = read(UInt32.self, at: headerSize + answerUIDOffset) else {
            return .failure(Failure(description: "the kernel's socket diagnostics answered with message type \(type)"))
        }
        return .success(uid)
    }

    /// The uid that owns the socket whose local end is `local` and remote end `remote`: for a
    /// connection this daemon accepted, `local` is the client's address and `remote` the daemon's.
    static func owner(local: Endpoint, remote: Endpoint) -> Result<UInt32, Failure> {
        let descriptor = socket(AF_NETLINK, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), netlinkSockDiag)
        guard descriptor >= 0 else {
            return .failure(Failure(description: "no netlink socket for the kernel's socket diagnostics (\(String(cString: strerror(errno))))"))
        }
        defer { close(descriptor) }
        // The kernel answers at once; a second is a bound should it not.
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        _ = setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let sequence = UInt32.random(in: 1...UInt32.max)
        let message = request(local: local, remote: remote, sequence: sequence)
        let sent = message.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, 0) }
        guard sent == message.count else {
            return .failure(Failure(description: "the request to the kernel's socket diagnostics failed (\(String(cString: strerror(errno))))"))
        }
        var answer = [UInt8](repeating: 0, count: 8_192)
        let received = answer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        guard received > 0 else {
            return .failure(Failure(description: "no answer from the kernel's socket diagnostics (\(String(cString: strerror(errno))))"))
        }
        return owner(inAnswer: Array(answer.prefix(received)), sequence: sequence)
    }
}
