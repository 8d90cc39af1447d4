import Foundation
import NIOCore
@testable import ParticipantAPI
import Testing

/// Naming a connection's peer: the kernel's socket diagnostics for loopback TCP, SO_PEERGROUPS'
/// buffer, and the connection limits by peer.
@Suite struct PeerIdentityTests {
    /// A loopback TCP connection made with plain sockets: the client's end and the server's.
    func loopbackConnection() throws -> (client: SocketDiagnostics.Endpoint, server: SocketDiagnostics.Endpoint, close: () -> Void) {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) } }
        _ = listen(listener, 4)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        let connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, length) } }
        try #require(connected == 0)
        var local = sockaddr_in()
        _ = withUnsafeMutablePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(client, $0, &length) } }
        let endpoint = { (address: sockaddr_in) in
            SocketDiagnostics.Endpoint(family: AF_INET, address: withUnsafeBytes(of: address.sin_addr) { Array($0) }, port: UInt16(bigEndian: address.sin_port))
        }
        return (endpoint(local), endpoint(address), { close(client); close(listener) })
    }

    @Test("The kernel names the user owning the client's end of a loopback connection; a connection that is not there is named by none")
    func ownerOfLoopbackClient() throws {
        let connection = try loopbackConnection()
        defer { connection.close() }
        #expect(connection.client.isLoopback)
        #expect(try SocketDiagnostics.owner(local: connection.client, remote: connection.server).get() == geteuid())
        var elsewhere = connection.client
        elsewhere.port = connection.client.port == 65_535 ? 1 : connection.client.port + 1
        guard case .failure(let failure) = SocketDiagnostics.owner(local: elsewhere, remote: connection.server) else {
            Issue.record("a socket that does not exist was named")
            return
        }
        #expect(failure.description.contains("not on this host's loopback"))
    }

    @Test("Loopback: 127.0.0.0/8, ::1, ::ffff:127.x; nothing else")
    func loopbackAddresses() {
        #expect(SocketDiagnostics.Endpoint(family: AF_INET, address: [127, 1, 2, 3], port: 1).isLoopback)
        #expect(!SocketDiagnostics.Endpoint(family: AF_INET, address: [10, 0, 0, 1], port: 1).isLoopback)
        #expect(SocketDiagnostics.Endpoint(family: AF_INET6, address: [UInt8](repeating: 0, count: 15) + [1], port: 1).isLoopback)
        #expect(SocketDiagnostics.Endpoint(family: AF_INET6, address: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 127, 0, 0, 1], port: 1).isLoopback)
        #expect(!SocketDiagnostics.Endpoint(family: AF_INET6, address: [0xFE, 0x80] + [UInt8](repeating: 0, count: 13) + [1], port: 1).isLoopback)
    }

    @Test("SO_PEERGROUPS' zero-filled buffer: trailing zeros are padding, a leading 0 is root's group, all zeros ask the probe")
    func peerGroupsBuffer() {
        #expect(PeerGroups.decode([5, 10, 0, 0], hasAny: true) == [5, 10])
        #expect(PeerGroups.decode([0, 5, 0, 0], hasAny: true) == [0, 5])
        #expect(PeerGroups.decode([0, 0, 0], hasAny: false) == [])
        #expect(PeerGroups.decode([0, 0, 0], hasAny: true) == [0])
    }

    @Test("Connections are counted by peer: beyond the peer's limit or the listener's one more is refused; a refused peer is logged once in 10 s")
    func connectionCounts() {
        let count = ConnectionCount()
        let limits = (total: 4, perPeer: 2)
        #expect(count.admit(1, limits: limits) == .admitted)
        #expect(count.admit(1, limits: limits) == .admitted)
        #expect(count.admit(1, limits: limits) == .refused(.peer, logNow: true, since: 0))
        #expect(count.admit(1, limits: limits) == .refused(.peer, logNow: false, since: 0))
        #expect(count.admit(2, limits: limits) == .admitted)
        #expect(count.admit(nil, limits: limits) == .admitted, "anonymous peers count as one")
        #expect(count.admit(3, limits: limits) == .refused(.listener, logNow: true, since: 0))
        count.closed(1)
        #expect(count.current(of: 1) == 1)
        #expect(count.admit(3, limits: limits) == .admitted)
        #expect(count.current == 4)
    }
}
