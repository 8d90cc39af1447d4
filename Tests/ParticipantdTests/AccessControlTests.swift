import Foundation
@testable import ParticipantAPI
@testable import ParticipantClient
@testable import ParticipantDaemon
@testable import ParticipantDelivery
@testable import ParticipantOutbox
import ParticipantWire
import ParticipantTestSupport
import Testing

/// SO_PEERCRED checks, with real second users: the test runs participantctl as `nobody` and as a
/// user id with no account, through setpriv. Changing user needs root, as CI runs.
@Suite(.enabled(if: getuid() == 0, "acting as a second user needs root"), .serialized)
struct AccessControlTests {
    /// participantctl as another user: copied where that user can run it (the build folder may
    /// sit in a private temporary folder).
    func participantctl(as uid: Int, _ arguments: [String], socket: String, directory: TemporaryDirectory) async throws -> (Int32, String, String) {
        let copy = directory.path + "/participantctl"
        if !FileManager.default.fileExists(atPath: copy) {
            try FileManager.default.copyItem(atPath: try BuiltProduct.path("participantctl"), toPath: copy)
            chmod(copy, 0o755)
        }
        return try await ChildProcess.run(
            "/usr/bin/setpriv", ["--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", copy] + arguments + ["--socket", socket]
        )
    }

    @Test("A peer off the allow list gets 403 and a log line; a non-admin peer may read but not change the queue")
    func allowListAndAdminGroup() async throws {
        try await TestDaemon.with(configure: { configuration in
            configuration.socketMode = 0o666
            configuration.access = AccessPolicy(allowUsers: ["nobody"], adminGroups: ["root"])
        }) { daemon in
            let directory = daemon.directory
            chmod(directory.path, 0o755)
            let socket = daemon.configuration.socketPath
            _ = try await daemon.client.submit(EventSubmission(contentType: EventContentType.typing.rawValue, clientToken: "acl-1", connectionToken: "acl-connection"))

            // A user with no account and not on the list: refused whatever it asks.
            let (refused, _, refusal) = try await participantctl(as: 4242, ["health"], socket: socket, directory: directory)
            #expect(refused != 0)
            #expect(refusal.contains("AccessDenied") && refusal.contains("uid 4242 may not use this socket"), "\(refusal)")
            try await eventually(timeout: .seconds(5), "refusal logged") { daemon.logText.contains("Request refused: the peer is not on the allow list") }
            #expect(daemon.logText.contains("4242"))
            let (refusedSubmit, _, _) = try await participantctl(as: 4242, [
                "send-event", "--content-type", EventContentType.typing.rawValue, "--connection-token", "x", "--client-token", "acl-2",
            ], socket: socket, directory: directory)
            #expect(refusedSubmit != 0)
            #expect(try await daemon.client.list(limit: 10).map(\.clientToken) == ["acl-1"], "nothing stored for a refused peer")

            // nobody: allowed to use the socket and read the queue, not to change it.
            let (health, _, _) = try await participantctl(as: 65534, ["health"], socket: socket, directory: directory)
            #expect(health == 0)
            let (listed, list, _) = try await participantctl(as: 65534, ["list", "--json"], socket: socket, directory: directory)
            #expect(listed == 0 && list.contains("acl-1"))
            let (flushed, _, flushRefusal) = try await participantctl(as: 65534, ["flush"], socket: socket, directory: directory)
            #expect(flushed != 0)
            #expect(flushRefusal.contains("AccessDenied") && flushRefusal.contains("access.adminGroups"), "\(flushRefusal)")
            #expect(daemon.logText.contains("Queue command refused"))

            // Root (this process) may change it.
            #expect(try await daemon.client.flush().action == "flushed")
        }
    }

    @Test("A peer's groups are looked up once for its connection, not for each request on it")
    func groupsOncePerConnection() async throws {
        try await TestDaemon.with(configure: { configuration in
            configuration.socketMode = 0o666
            configuration.access = AccessPolicy(allowGroups: ["65534"])
        }) { daemon in
            chmod(daemon.directory.path, 0o755)
            let before = ResolvedAccess.groupLookups.load(ordering: .relaxed)
            // Five requests on one keep-alive connection, as nobody (gid 65534, allowed by group).
            let script = """
                import http.client, socket, sys
                class Unix(http.client.HTTPConnection):
                    def connect(self):
                        self.sock = socket.socket(socket.AF_UNIX)
                        self.sock.connect(sys.argv[1])
                connection = Unix("localhost")
                for _ in range(5):
                    connection.request("GET", "/v1/health")
                    answer = connection.getresponse()
                    answer.read()
                    print(answer.status)
                """
            let (status, output, errors) = try await ChildProcess.run(
                "/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/env", "python3", "-c", script, daemon.configuration.socketPath]
            )
            #expect(status == 0, "\(errors)")
            #expect(output.split(separator: "\n") == ["200", "200", "200", "200", "200"], "\(output)")
            #expect(ResolvedAccess.groupLookups.load(ordering: .relaxed) - before == 1)
        }
    }

    @Test("Unknown names in access lists stop the daemon with the key named")
    func unknownNames() throws {
        #expect(throws: ConfigurationError(key: "access.allowGroups", rule: "no group named \"no-such-group-xyz\" on this system")) {
            try AccessPolicy(allowGroups: ["no-such-group-xyz"]).resolved()
        }
        #expect(MemoryLayout<PeerCredentials>.size == 12, "PeerCredentials must have struct ucred's layout")
    }
}
