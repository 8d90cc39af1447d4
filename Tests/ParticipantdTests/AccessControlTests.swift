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
    /// The start of a Python script that talks HTTP over the socket named by its first argument:
    /// `connection`, an `http.client` connection, and `json` imported.
    static let unixConnectionPrelude = """
        import http.client, json, socket, sys
        class Unix(http.client.HTTPConnection):
            def connect(self):
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(sys.argv[1])
        connection = Unix("localhost")

        """

    /// A daemon whose socket (0666) and folder (0755) every user may reach: the access checks
    /// under test decide alone.
    func withOpenSocket<T>(_ configure: (inout DaemonConfiguration) -> Void, _ body: (TestDaemon) async throws -> T) async throws -> T {
        try await TestDaemon.with(configure: { configuration in
            configuration.socketMode = 0o666
            configure(&configuration)
        }) { daemon in
            chmod(daemon.directory.path, 0o755)
            return try await body(daemon)
        }
    }

    /// participantctl as another user, with no supplementary group or with `group`: copied where
    /// that user can run it (the build folder may sit in a private temporary folder).
    func participantctl(as uid: Int, group: Int? = nil, _ arguments: [String], socket: String, directory: TemporaryDirectory) async throws -> (Int32, String, String) {
        let copy = try await executableCopy(of: "participantctl", in: directory.path)
        return try await ChildProcess.run(
            "/usr/bin/setpriv", ["--reuid=\(uid)", "--regid=\(uid)", group.map { "--groups=\($0)" } ?? "--clear-groups", copy] + arguments + ["--socket", socket]
        )
    }

    @Test("A peer off the allow list gets 403 and a log line, and nothing of it is stored")
    func allowList() async throws {
        try await withOpenSocket({ configuration in
            configuration.access = AccessPolicy(allowUsers: ["nobody"])
        }) { daemon in
            let directory = daemon.directory
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

            // nobody, on the list, is served.
            let (health, _, _) = try await participantctl(as: 65534, ["health"], socket: socket, directory: directory)
            #expect(health == 0)
        }
    }

    @Test("Each user owns its items: another's are not found, the same ClientToken is each one's own, root and an admin group see and change all")
    func eachPeerOwnsItsItems() async throws {
        try await withOpenSocket({ configuration in
            configuration.access = AccessPolicy(adminGroups: ["4321"])
        }) { daemon in
            let directory = daemon.directory
            let socket = daemon.configuration.socketPath
            func asNobody(_ arguments: [String]) async throws -> (Int32, String, String) {
                try await participantctl(as: 65534, arguments, socket: socket, directory: directory)
            }
            // Root's items (this process).
            let rootShared = try await daemon.client.submit(EventSubmission(contentType: EventContentType.typing.rawValue, clientToken: "shared", connectionToken: "root-chat"))
            #expect(rootShared.created)
            _ = try await daemon.client.submit(EventSubmission(contentType: EventContentType.typing.rawValue, clientToken: "root-only", connectionToken: "root-chat-2"))

            // nobody's submission with root's ClientToken is its own event, not a 409.
            let (sent, sentOutput, sentErrors) = try await asNobody([
                "send-event", "--content-type", EventContentType.typing.rawValue, "--connection-token", "nobody-chat", "--client-token", "shared",
            ])
            #expect(sent == 0, "\(sentOutput) \(sentErrors)")
            // All three sent (not in flight: every command applies).
            try await eventually(timeout: .seconds(10), "all sent") {
                let items = try await daemon.client.list(limit: 10)
                return items.count == 3 && items.allSatisfy { $0.state == .sent }
            }

            // nobody sees only its own item.
            let (listed, list, _) = try await asNobody(["list", "--json"])
            #expect(listed == 0)
            let nobodysItems = list.split(separator: "\n").compactMap { try? WireCoding.decoder().decode(EventRecord.self, from: Data($0.utf8)) }
            #expect(nobodysItems.map(\.clientToken) == ["shared"], "\(list)")
            #expect(nobodysItems.first?.owner == ItemOwner(uid: 65534, user: "nobody"))
            #expect(nobodysItems.first?.connectionHash != rootShared.event.connectionHash)
            let (shown, shownOutput, _) = try await asNobody(["show", "shared"])
            #expect(shown == 0 && shownOutput.contains("65534"), "\(shownOutput)")

            // Root's items do not exist for nobody: not found, never forbidden; nothing changes.
            for command in [["show", "root-only"], ["hold", "root-only"], ["delete", "root-only"], ["retry", "root-only"], ["release", "root-only"]] {
                let (status, _, errors) = try await asNobody(command)
                #expect(status != 0, "\(command)")
                #expect(errors.contains("EventNotFound") && !errors.contains("AccessDenied"), "\(command): \(errors)")
            }
            let (flushed, flushOutput, _) = try await asNobody(["flush"])
            #expect(flushed == 0 && flushOutput.contains("\"changed\" : 0"), "only nobody's items are flushed, and they are due already: \(flushOutput)")
            // Naming root's items is refused for what it asks, whether or not they exist.
            let (named, _, namedErrors) = try await asNobody(["list", "--owner", "root"])
            #expect(named != 0 && namedErrors.contains("AccessDenied") && namedErrors.contains("owner=0"), "\(namedErrors)")
            // A backup holds everyone's items: administrators only.
            let writable = directory.path + "/nobodys"
            try FileManager.default.createDirectory(atPath: writable, withIntermediateDirectories: false)
            chmod(writable, 0o777)
            let (backedUp, _, backupErrors) = try await asNobody(["backup", writable + "/backup.sqlite"])
            #expect(backedUp != 0 && backupErrors.contains("AccessDenied"), "\(backupErrors)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: writable).isEmpty, "no file, not even a partial one")
            let (stats, statsOutput, _) = try await asNobody(["stats"])
            let nobodysStats = try WireCoding.decoder().decode(QueueStats.self, from: Data(statsOutput.utf8))
            #expect(stats == 0 && nobodysStats.counts.values.reduce(0, +) == 1 && nobodysStats.peers?.keys.sorted() == ["nobody"], "\(statsOutput)")
            #expect(try await daemon.client.event(clientToken: "root-only", owner: 0).state == .sent, "root's item is untouched")

            // Root sees both users' items; the shared token needs its owner named.
            #expect(try await daemon.client.list(limit: 10).count == 3)
            do {
                _ = try await daemon.client.event(clientToken: "shared")
                Issue.record("an ambiguous token was answered")
            } catch {
                guard case .api(409, let body)? = error as? DaemonClientError else { Issue.record("\(error)"); return }
                #expect(body.code == APIErrorCode.ambiguousClientToken && body.message.contains("nobody (uid 65534)"), "\(body)")
            }
            #expect(try await daemon.client.event(clientToken: "shared", owner: 0).connectionHash == rootShared.event.connectionHash)
            do {
                _ = try await daemon.client.change(.retry, clientToken: "shared", owner: 65534)
                Issue.record("a sent item was retried")
            } catch {
                // Found (root sees nobody's item); a sent item is not retried.
                guard case .api(409, let body)? = error as? DaemonClientError else { Issue.record("\(error)"); return }
                #expect(body.code == APIErrorCode.invalidState, "\(body)")
            }

            // A member of an admin group (uid 4242, no account, with group 4321) sees and changes all.
            func asAdmin(_ arguments: [String]) async throws -> (Int32, String, String) {
                try await participantctl(as: 4242, group: 4321, arguments, socket: socket, directory: directory)
            }
            let (adminListed, adminList, _) = try await asAdmin(["list", "--json"])
            #expect(adminListed == 0 && adminList.split(separator: "\n").count == 3, "\(adminList)")
            let (adminDeleted, _, adminErrors) = try await asAdmin(["delete", "root-only"])
            #expect(adminDeleted == 0, "\(adminErrors)")
            let (deletedNobodys, _, deleteErrors) = try await asAdmin(["delete", "shared", "--owner", "nobody"])
            #expect(deletedNobodys == 0, "\(deleteErrors)")
            let left = try await daemon.client.list(limit: 10)
            #expect(left.map(\.clientToken) == ["shared"] && left.first?.owner?.uid == 0, "\(left)")
            #expect(daemon.logText.contains("\"event.owner\": nobody"), "the journal says whose item was changed")
        }
    }

    @Test("A peer's groups are the ones its process has (SO_PEERGROUPS), not the ones /etc/group gives its user")
    func groupsOfTheProcess() async throws {
        try await withOpenSocket({ configuration in
            configuration.access = AccessPolicy(allowGroups: ["4321"])
        }) { daemon in
            // Five requests on one keep-alive connection, as nobody with and without group 4321,
            // which /etc/group does not give nobody.
            let script = Self.unixConnectionPrelude + """
                for _ in range(5):
                    connection.request("GET", "/v1/health")
                    answer = connection.getresponse()
                    answer.read()
                    print(answer.status)
                """
            func statuses(groups: [String]) async throws -> [Substring] {
                let (status, output, errors) = try await ChildProcess.run(
                    "/usr/bin/setpriv", ["--reuid=65534", "--regid=65534"] + groups + ["/usr/bin/env", "python3", "-c", script, daemon.configuration.socketPath]
                )
                #expect(status == 0, "\(errors)")
                return output.split(separator: "\n")
            }
            let withGroup = try await statuses(groups: ["--groups=4321"])
            #expect(withGroup == ["200", "200", "200", "200", "200"])
            let withoutGroup = try await statuses(groups: ["--clear-groups"])
            #expect(withoutGroup == ["403", "403", "403", "403", "403"])
        }
    }

    /// The connections a listener on `path` has accepted and not closed: an accepted Unix socket
    /// carries its listener's path in /proc/net/unix, state 03 (connected); a client's has none.
    static func connectionsOpen(on path: String) throws -> Int {
        // Read to its end: /proc files report no size, and a read by size stops at one page.
        let file = try #require(FileHandle(forReadingAtPath: "/proc/net/unix"))
        defer { try? file.close() }
        let table = String(decoding: try file.readToEnd() ?? Data(), as: UTF8.self)
        return table.split(separator: "\n").filter { line in
            let fields = line.split(separator: " ")
            return fields.count >= 8 && fields[5] == "03" && fields.last.map(String.init) == path
        }.count
    }

    @Test("One user holding 1,000 connections keeps only access.peerMaxConnections of them; another user's participantctl still answers")
    func peerConnectionLimit() async throws {
        try await withOpenSocket({ configuration in
            configuration.api.peerMaxConnections = 64
        }) { daemon in
            let directory = daemon.directory
            // As nobody: 1,000 connections, then how many of them the daemon closed (EOF), counted
            // until 1,000 - 64 are, or 30 s pass; then it holds the rest open until it is killed.
            let script = """
                import resource, select, socket, sys, time
                soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
                resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
                sockets = []
                for _ in range(1000):
                    s = socket.socket(socket.AF_UNIX)
                    s.connect(sys.argv[1])
                    sockets.append(s)
                closed, deadline = set(), time.time() + 30
                poller = select.poll()
                for s in sockets: poller.register(s, select.POLLIN | select.POLLHUP)
                while len(closed) < 1000 - int(sys.argv[2]) and time.time() < deadline:
                    for fd, _ in poller.poll(1000):
                        closed.add(fd); poller.unregister(fd)
                print("closed", len(closed), flush=True)
                time.sleep(600)
                """
            let holder = try ChildProcess("/usr/bin/setpriv", [
                "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/env", "python3", "-c", script, daemon.configuration.socketPath, "64",
            ])
            defer { holder.kill(SIGKILL) }
            try await eventually(timeout: .seconds(60), "the holder's count (\(holder.standardError))") { holder.standardOutput.contains("closed") }
            #expect(holder.standardOutput.contains("closed 936"), "\(holder.standardOutput)")
            // The connections open on the daemon's socket, not the process's descriptors (tests
            // running beside this one open descriptors too, and once pushed a process-wide count
            // past its margin of 120). Nobody's 64, and the test's own client may keep one or two
            // alive; without the peer's limit the daemon held 257 (the listener's limit).
            let held = try Self.connectionsOpen(on: daemon.configuration.socketPath)
            #expect((64...66).contains(held), "the daemon holds the peer's 64 connections, not 1,000: \(held)")

            // Another user (a uid with no account) is served at once.
            let clock = ContinuousClock()
            let start = clock.now
            let (health, output, errors) = try await participantctl(as: 4242, ["health"], socket: daemon.configuration.socketPath, directory: directory)
            let took = clock.now - start
            #expect(health == 0, "\(output) \(errors)")
            print("participantctl health as uid 4242 beside 1,000 connections of nobody's: \(took)")
            try await eventually(timeout: .seconds(5), "the refusals logged") {
                daemon.logText.contains("Connection refused: the peer has access.peerMaxConnections connections open")
            }
            // Once a line per 10 s per peer, not one per refused connection.
            #expect(daemon.logText.components(separatedBy: "access.peerMaxConnections connections open").count - 1 <= 3)
        }
    }

    @Test("Over aws.listen the peer is the user owning the client's socket: one not in access.allowUsers gets 403, an allowed one is served")
    func tcpPeersAreNamed() async throws {
        try await TestDaemon.with(configure: { configuration in
            configuration.awsListen = ListenAddress(host: "127.0.0.1", port: 0)
            configuration.access = AccessPolicy(allowUsers: ["nobody"])
        }) { daemon in
            let port = try await daemon.awsListenPort()
            let script = """
                import http.client, json, sys
                connection = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
                body = json.dumps({"ContentType": "application/vnd.amazonaws.connect.event.typing", "ClientToken": sys.argv[2]})
                connection.request("POST", "/participant/event", body, {"X-Amz-Bearer": "tcp-connection", "Content-Type": "application/json"})
                answer = connection.getresponse()
                print(answer.status, answer.read().decode())
                """
            func send(as uid: Int, token: String) async throws -> String {
                let (status, output, errors) = try await ChildProcess.run(
                    "/usr/bin/setpriv", ["--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", "/usr/bin/env", "python3", "-c", script, port, token]
                )
                #expect(status == 0, "\(errors)")
                return output
            }
            let refused = try await send(as: 4242, token: "tcp-refused")
            #expect(refused.hasPrefix("403") && refused.contains("uid 4242 may not use this socket"), "\(refused)")
            let served = try await send(as: 65534, token: "tcp-served")
            #expect(served.hasPrefix("200"), "\(served)")
            #expect(try await daemon.client.list(limit: 10).map(\.clientToken) == ["tcp-served"])
        }
    }

    @Test("One user's 5,000 read receipts on fresh chats do not queue ahead of another user's one: peers take turns at the quota")
    func peersTakeTurns() async throws {
        try await withOpenSocket({ configuration in
            configuration.sender.quota = .init(rate: 10, burst: 15)
        }) { daemon in
            daemon.standIn.setQuota(rate: 10, burst: 18)
            let directory = daemon.directory
            // As nobody: 5,000 read receipts, each on a chat of its own, in batches of 500.
            let script = Self.unixConnectionPrelude + """
                for batch in range(10):
                    events = [{"contentType": "application/vnd.amazonaws.connect.event.message.read",
                               "content": json.dumps({"messageId": "m-%d" % n}), "clientToken": "a-%d" % n,
                               "connectionToken": "a-chat-%d" % n} for n in range(batch * 500, batch * 500 + 500)]
                    connection.request("POST", "/v1/events/batch", json.dumps({"events": events}), {"Content-Type": "application/json"})
                    answer = connection.getresponse()
                    answer.read()
                    assert answer.status == 200, answer.status
                print("stored")
                """
            let (stored, output, errors) = try await ChildProcess.run(
                "/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/env", "python3", "-c", script, daemon.configuration.socketPath]
            )
            #expect(stored == 0 && output.contains("stored"), "\(output) \(errors)")
            // Another user's one receipt, submitted after them, waits for its turn only.
            let (sent, answer, refusal) = try await participantctl(as: 4242, [
                "send-event", "--content-type", EventContentType.messageRead.rawValue, "--content", #"{"messageId":"m-b"}"#,
                "--connection-token", "b-chat", "--client-token", "b-0", "--wait", "30",
            ], socket: daemon.configuration.socketPath, directory: directory)
            #expect(sent == 0, "\(answer) \(refusal)")
            let bFirst = daemon.standIn.requests.firstIndex { $0.clientToken == "b-0" }
            let before = try #require(bFirst, "b-0 reached the service")
            // Counted from b-0's acceptance: how long participantctl took to start (seconds on a
            // loaded machine, at 10 of nobody's requests a second) is not the daemon's doing.
            let accepted = try await daemon.client.event(clientToken: "b-0").acceptedAt
            let sentBeforeIt = daemon.standIn.requests.filter { $0.receivedAt < accepted }.count
            print("b-0 was request \(before + 1) at the service, after \(before) of nobody's 5,000, \(sentBeforeIt) of them before b-0 was accepted")
            #expect(before - sentBeforeIt < 20, "b-0 went in its turn, not after the backlog: \(before - sentBeforeIt) of nobody's went between")
            let peers = try #require(try await daemon.client.stats().peers)
            #expect(peers["uid 4242"]?.sentLastMinute == 1, "\(peers)")
            let (_, _, metrics) = try await RawSocketClient(path: daemon.configuration.socketPath).requestWithHeaders(method: "GET", path: "/metrics")
            #expect(String(decoding: metrics, as: UTF8.self).contains(#"participantd_peer_sent_total{connect_instance="default",peer="uid 4242"} 1"#))
        }
    }

    @Test("One user filling its share of the outbox gets 503 PeerOutboxFull; another user still submits")
    func shareOfTheOutbox() async throws {
        try await withOpenSocket({ configuration in
            configuration.limits.capacity = 20
            configuration.limits.peerShare = 0.5
            // Nothing leaves while the test looks: the first request is the only one.
            configuration.sender.quota = .init(rate: 0.001, burst: 1)
        }) { daemon in
            let directory = daemon.directory
            var statuses: [Int32] = []
            var lastRefusal = ""
            for index in 0..<14 {
                let (status, _, errors) = try await participantctl(as: 65534, [
                    "send-event", "--content-type", EventContentType.messageRead.rawValue, "--content", #"{"messageId":"m"}"#,
                    "--connection-token", "a-chat-\(index)", "--client-token", "a-\(index)",
                ], socket: daemon.configuration.socketPath, directory: directory)
                statuses.append(status)
                if status != 0 { lastRefusal = errors }
            }
            // Ten queued (one more if the first is in flight: those in flight are not counted).
            #expect((10...11).contains(statuses.filter { $0 == 0 }.count), "\(statuses)")
            #expect(lastRefusal.contains("PeerOutboxFull") && lastRefusal.contains("access.peerMaxWaitingShare"), "\(lastRefusal)")
            let (other, output, errors) = try await participantctl(as: 4242, [
                "send-event", "--content-type", EventContentType.messageRead.rawValue, "--content", #"{"messageId":"m"}"#,
                "--connection-token", "b-chat", "--client-token", "b-0",
            ], socket: daemon.configuration.socketPath, directory: directory)
            #expect(other == 0, "\(output) \(errors)")
            // stats and the metrics show each user's part.
            let peers = try #require(try await daemon.client.stats().peers)
            #expect((10...11).contains(peers["nobody"]?.waiting ?? 0), "\(peers)")
            #expect(peers["nobody"]?.uid == 65534)
            #expect(peers["uid 4242"]?.waiting == 1)
            let (_, _, metrics) = try await RawSocketClient(path: daemon.configuration.socketPath).requestWithHeaders(method: "GET", path: "/metrics")
            let text = String(decoding: metrics, as: UTF8.self)
            #expect(text.contains(#"participantd_peer_waiting_events{peer="uid 4242"} 1"#), "\(text)")
            #expect(text.contains(#"participantd_peer_waiting_events{peer="nobody"}"#))
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
