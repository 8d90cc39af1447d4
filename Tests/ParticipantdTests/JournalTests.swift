import Foundation
import Logging
@testable import ParticipantClient
@testable import ParticipantDaemon
import ParticipantServiceStandIn
import ParticipantTestSupport
import ParticipantWire
import Synchronization
import Testing

/// A datagram socket standing in for journald's: what the daemon sends it, decoded.
final class FakeJournal: Sendable {
    let path: String
    private let descriptor: Int32
    private let received = Locked<[[(name: String, value: String)]]>([])
    private let undecodable = Locked(0)

    init(path: String) throws {
        self.path = path
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        self.descriptor = descriptor
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard descriptor >= 0, bound == 0 else { throw TimedOut(description: "cannot bind \(path): \(String(cString: strerror(errno)))") }
        // Room for large entries, as journald's (it asks for 8 MiB).
        var size: Int32 = 8 << 20
        setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        Thread { [received, undecodable] in
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            while true {
                let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { return }
                if let fields = JournalEntry.decode(Array(buffer[0..<count])) {
                    received.withLock { $0.append(fields) }
                } else {
                    undecodable.withLock { $0 += 1 }
                }
            }
        }.start()
    }

    var entries: [[String: String]] {
        received.withLock { $0.map { Dictionary($0.map { ($0.name, $0.value) }) { first, _ in first } } }
    }
    var rawEntries: [[(name: String, value: String)]] { received.withLock { $0 } }
    var undecodableCount: Int { undecodable.withLock { $0 } }

    func close() {
        shutdown(descriptor, Int32(SHUT_RDWR))
        Glibc.close(descriptor)
        unlink(path)
    }
}

@Suite struct JournalTests {
    @Test("A field holding a newline is sent length-prefixed; keys become journal field names")
    func encoding() throws {
        let fields: [(name: String, value: String)] = [("MESSAGE", "one line"), ("ERROR_MESSAGE", "two\nlines"), ("EMPTY", "")]
        let bytes = JournalEntry.encode(fields)
        #expect(Array(bytes.prefix(17)) == Array("MESSAGE=one line\n".utf8))
        // NAME \n, 64-bit little-endian length 9, the bytes, \n.
        #expect(Array(bytes[17..<39]) == Array("ERROR_MESSAGE\n".utf8) + [9, 0, 0, 0, 0, 0, 0, 0])
        let decoded = try #require(JournalEntry.decode(bytes))
        #expect(decoded.map(\.name) == ["MESSAGE", "ERROR_MESSAGE", "EMPTY"] && decoded.map(\.value) == ["one line", "two\nlines", ""])
        #expect(JournalEntry.fieldName("event.client_token") == "EVENT_CLIENT_TOKEN")
        #expect(JournalEntry.fieldName("connection.hash") == "CONNECTION_HASH")
        #expect(JournalEntry.fieldName("_source") == "SOURCE", "a leading _ is journald's own")
        #expect(JournalEntry.fieldName("2fa") == "FA")
        #expect(JournalEntry.fieldName("héllo") == "H_LLO")
        #expect(JournalEntry.fieldName("...") == nil)
        #expect(JournalEntry.fieldName(String(repeating: "a", count: 100))?.count == 64)
    }

    @Test("A lifecycle message gets its MESSAGE_ID by its longest matching start; others none")
    func messageIDs() throws {
        let sent = try #require(JournalCatalog.entries.first { $0.name == "sent" }?.id)
        let stopped = try #require(JournalCatalog.entries.first { $0.name == "stopped" }?.id)
        let failed = try #require(JournalCatalog.entries.first { $0.name == "storageFailed" }?.id)
        #expect(JournalCatalog.messageID(for: "Event sent") == sent)
        #expect(JournalCatalog.messageID(for: "Message sent") == sent)
        #expect(JournalCatalog.messageID(for: "Event sent as ConnectParticipant: true on the participant's connection") == sent)
        #expect(JournalCatalog.messageID(for: "participantd stopped") == stopped)
        #expect(JournalCatalog.messageID(for: "participantd stopped: the outbox's storage failed; it must restart to trust what is on disk") == failed)
        #expect(JournalCatalog.messageID(for: "Sender stopping; waiting for requests in flight") == nil)
        #expect(Set(JournalCatalog.entries.map(\.id)).count == JournalCatalog.entries.count, "IDs are unique")
        #expect(JournalCatalog.entries.allSatisfy { $0.id.count == 32 && $0.id.allSatisfy(\.isHexDigit) && $0.id == $0.id.lowercased() })
    }

    @Test("The catalog file explains every MESSAGE_ID, and every message given one is logged by the code")
    func catalogAgrees() throws {
        let catalog = try String(contentsOfFile: Repository.root + "/packaging/participantd.catalog", encoding: .utf8)
        let ids = catalog.matches(of: /(?m)^-- ([0-9a-f]{32})$/).map { String($0.1) }
        #expect(Set(ids) == Set(JournalCatalog.entries.map(\.id)))
        #expect(catalog.matches(of: #/(?m)^Subject: /#).count == ids.count)
        let sources = try FileManager.default.subpathsOfDirectory(atPath: Repository.root + "/Sources").filter { $0.hasSuffix(".swift") }
            .map { try String(contentsOfFile: Repository.root + "/Sources/" + $0, encoding: .utf8) }.joined()
        for entry in JournalCatalog.entries {
            for message in entry.messages where !message.hasPrefix("participantd cannot") && !message.hasPrefix("participantd stopped:") {
                #expect(sources.contains("\"\(message)"), "\(message) is not logged anywhere")
            }
        }
    }

    @Test("journalctl reads the catalog: each ID listed with its subject (journalctl --root on a copy)")
    func journalctlReadsTheCatalog() async throws {
        let journalctl = try #require(["/usr/bin/journalctl", "/bin/journalctl"].first { FileManager.default.isExecutableFile(atPath: $0) },
                                      "journalctl is not installed (package systemd)")
        let root = try TemporaryDirectory()
        defer { root.remove() }
        try FileManager.default.createDirectory(atPath: root.path + "/usr/lib/systemd/catalog", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root.path + "/var/lib/systemd/catalog", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Repository.root + "/packaging/participantd.catalog", toPath: root.path + "/usr/lib/systemd/catalog/participantd.catalog")
        let (updated, _, updateErrors) = try await ChildProcess.run(journalctl, ["--root=\(root.path)", "--update-catalog"])
        #expect(updated == 0, "\(updateErrors)")
        let (listed, list, listErrors) = try await ChildProcess.run(journalctl, ["--root=\(root.path)", "--list-catalog"])
        #expect(listed == 0, "\(listErrors)")
        for entry in JournalCatalog.entries {
            #expect(list.contains(entry.id), "\(entry.name) \(entry.id) not in: \(list)")
        }
        #expect(list.contains("participantd is ready"))
    }

    @Test("Under journald the daemon sends structured entries: MESSAGE, PRIORITY, MESSAGE_ID, the metadata as fields; never a connection token")
    func nativeEntries() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let journal = try FakeJournal(path: directory.path + "/journal.socket")
        defer { journal.close() }
        let standIn = try await ParticipantServiceStandIn.start { _ in .accept }
        defer { Task { try? await standIn.stop() } }
        let socket = directory.path + "/participantd.sock"
        let daemon = try ChildProcess(try BuiltProduct.path("participantd"), [
            "--socket", socket, "--database", directory.path + "/outbox.sqlite", "--endpoint", standIn.endpoint, "--log-format", "journal",
            // Each item's own lines are at debug.
            "--log-level", "debug",
        ], environment: ["PARTICIPANTD_LOG_JOURNAL_SOCKET": journal.path])
        defer { daemon.kill(SIGKILL) }
        let client = DaemonClient(socketPath: socket, timeout: .seconds(5))
        try await eventually(timeout: .seconds(20), "daemon ready") { (try? await client.health()) != nil }
        let secret = "SECRET-connection-token-\(UUID().uuidString)"
        _ = try await client.submit(EventSubmission(
            contentType: EventContentType.messageRead.rawValue, content: #"{"messageId":"m-1"}"#, clientToken: "journal-1", connectionToken: secret
        ))
        try await eventually(timeout: .seconds(10), "the sent entry") {
            journal.entries.contains { $0["MESSAGE_ID"] == JournalCatalog.entries.first { $0.name == "sent" }?.id && $0["EVENT_CLIENT_TOKEN"] == "journal-1" }
        }
        daemon.kill(SIGTERM)
        #expect(try await daemon.exitStatus() == 0)
        try await eventually(timeout: .seconds(5), "the stopped entry") { journal.entries.contains { $0["MESSAGE"] == "participantd stopped" } }

        let entries = journal.entries
        let ready = try #require(entries.first { ($0["MESSAGE"] ?? "").hasPrefix("participantd ready") })
        #expect(ready["PRIORITY"] == "5" && ready["SYSLOG_IDENTIFIER"] == "participantd")
        #expect(ready["MESSAGE_ID"] == JournalCatalog.entries.first { $0.name == "ready" }?.id)
        #expect(ready["SOCKET_PATH"] == socket)
        let accepted = try #require(entries.first { $0["EVENT_CLIENT_TOKEN"] == "journal-1" && ($0["MESSAGE"] ?? "").hasPrefix("Event accepted") })
        #expect(accepted["PRIORITY"] == "7")
        #expect(accepted["MESSAGE_ID"] == JournalCatalog.entries.first { $0.name == "accepted" }?.id)
        #expect(accepted["CONNECTION_HASH"]?.count == 16)
        #expect(accepted["CODE_FILE"]?.hasSuffix(".swift") == true && Int(accepted["CODE_LINE"] ?? "") != nil)
        // MESSAGE reads as the stream line did, so journalctl's short output is unchanged.
        #expect(accepted["MESSAGE"]?.contains("event.client_token=journal-1") == true)
        // The summary at info: the shutdown writes the last (here the only) period's.
        let activity = try #require(entries.first { $0["MESSAGE_ID"] == JournalCatalog.entries.first { $0.name == "activity" }?.id })
        #expect(activity["PRIORITY"] == "6")
        #expect(activity["SUMMARY_ACCEPTED"] == "1" && activity["SUMMARY_SENT"] == "1" && activity["OUTBOX_WAITING"] == "0", "\(activity)")
        #expect(journal.undecodableCount == 0)
        // Everything went to the journal, nothing to standard error; no entry holds the token.
        #expect(!daemon.standardError.contains("Event accepted"), "\(daemon.standardError)")
        #expect(!journal.rawEntries.contains { $0.contains { $0.value.contains(secret) } })
    }

    @Test("No journal socket, or an entry larger than a datagram may be: the record is written as a stream line instead")
    func fallBackToTheStream() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let lines = Mutex<[String]>([])
        let missing = LogSettings(level: .info, format: .journal, journal: JournalSocket(path: directory.path + "/no-journal.socket"))
        var logger = Logger(label: "test") { _ in DaemonLogHandler(settings: missing, write: { line in lines.withLock { $0.append(line) } }) }
        logger.info("Event sent", metadata: ["event.client_token": "a"])
        #expect(lines.withLock { $0 } == ["<6>Event sent event.client_token=a\n"])

        let journal = try FakeJournal(path: directory.path + "/journal.socket")
        defer { journal.close() }
        let present = LogSettings(level: .info, format: .journal, journal: JournalSocket(path: journal.path))
        logger = Logger(label: "test") { _ in DaemonLogHandler(settings: present, write: { line in lines.withLock { $0.append(line) } }) }
        logger.info("Event sent", metadata: ["event.client_token": "b"])
        // Far larger than a datagram may be (the socket's send buffer, about 200 KiB).
        logger.warning("Event failed", metadata: ["error.message": .string(String(repeating: "x", count: 4 << 20))])
        #expect(journal.entries.first?["EVENT_CLIENT_TOKEN"] == "b")
        #expect(lines.withLock { $0.count } == 2 && lines.withLock { $0.last?.hasPrefix("<4>Event failed error.message=xxx") } == true)
    }
}
