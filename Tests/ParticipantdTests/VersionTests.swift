import Foundation
import ParticipantWire
import ParticipantTestSupport
import Testing

/// The version every binary reports comes from the repository (`scripts/version`), and every form it
/// takes is a Debian version that sorts a later build later.
@Suite struct VersionTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// A temporary git repository holding a copy of scripts/version.
    struct Repository {
        let folder: URL

        init() throws {
            folder = FileManager.default.temporaryDirectory.appendingPathComponent("participantd-version-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder.appendingPathComponent("scripts"), withIntermediateDirectories: true)
            try FileManager.default.copyItem(
                at: VersionTests.packageRoot.appendingPathComponent("scripts/version"),
                to: folder.appendingPathComponent("scripts/version")
            )
        }

        @discardableResult
        func run(_ executable: String, _ arguments: [String]) async throws -> String {
            let (status, output, errors) = try await ChildProcess.run(executable, ["-C", folder.path] + arguments)
            #expect(status == 0, "\(arguments): \(errors)")
            return output.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        @discardableResult func git(_ arguments: String...) async throws -> String {
            try await run("/usr/bin/git", ["-c", "user.name=test", "-c", "user.email=test@example.org"] + arguments)
        }

        func commit(_ message: String) async throws -> String {
            try "\(message)\n".write(to: folder.appendingPathComponent("file.txt"), atomically: true, encoding: .utf8)
            try await git("add", "-A")
            try await git("commit", "-q", "-m", message)
            return try await git("rev-parse", "--short=7", "HEAD")
        }

        func version() async throws -> String {
            let (status, output, errors) = try await ChildProcess.run("/bin/bash", [folder.appendingPathComponent("scripts/version").path])
            #expect(status == 0, "\(errors)")
            return output.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        func remove() { try? FileManager.default.removeItem(at: folder) }
    }

    static func debianOrder(_ earlier: String, before later: String) async throws -> Bool {
        try await ChildProcess.run("/usr/bin/dpkg", ["--compare-versions", earlier, "lt", later]).0 == 0
    }

    @Test("scripts/version: the tag, the commits since it, .dirty, and 0.1.0 outside git; each sorts after the one before")
    func versionFromTheRepository() async throws {
        let repository = try Repository()
        defer { repository.remove() }

        #expect(try await repository.version() == "0.1.0")

        try await repository.git("init", "-q")
        let first = try await repository.commit("one")
        let untagged = try await repository.version()
        #expect(untagged == "0.1.0+git1.\(first)")
        let second = try await repository.commit("two")
        let untaggedLater = try await repository.version()
        #expect(untaggedLater == "0.1.0+git2.\(second)")

        try "changed\n".write(to: repository.folder.appendingPathComponent("file.txt"), atomically: true, encoding: .utf8)
        let dirty = try await repository.version()
        #expect(dirty == "0.1.0+git2.\(second).dirty")
        try await repository.git("checkout", "-q", "--", "file.txt")

        try await repository.git("tag", "v1.2.0")
        let tagged = try await repository.version()
        #expect(tagged == "1.2.0")
        let third = try await repository.commit("three")
        let afterTag = try await repository.version()
        #expect(afterTag == "1.2.0+git1.\(third)")

        let ordered = ["0.1.0", untagged, untaggedLater, tagged, afterTag]
        for (earlier, later) in zip(ordered, ordered.dropFirst()) {
            #expect(try await Self.debianOrder(earlier, before: later), "\(earlier) should sort before \(later)")
        }
        #expect(try await Self.debianOrder(untaggedLater, before: dirty))
    }

    @Test("participantd, participantctl and health report the version the build was made with")
    func binariesReportTheBuildsVersion() async throws {
        // scripts/version's form for release builds; 0.1.0+dev for a build without PARTICIPANTD_VERSION.
        let form = #/^[0-9]+\.[0-9]+\.[0-9]+((\+git[0-9]+\.[0-9a-f]{7})?(\.dirty)?|\+dev)$/#
        #expect(DaemonVersion.current.wholeMatch(of: form) != nil, "\(DaemonVersion.current)")
        for binary in ["participantd", "participantctl"] {
            let (status, output, _) = try await ChildProcess.run(try BuiltProduct.path(binary), ["--version"])
            #expect(status == 0)
            #expect(output.trimmingCharacters(in: .whitespacesAndNewlines) == DaemonVersion.current, "\(binary)")
        }
        try await TestDaemon.with { daemon in
            let health = try await daemon.client.health()
            #expect(health.version == DaemonVersion.current)
        }
    }
}
