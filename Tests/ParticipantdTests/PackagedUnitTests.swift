import Foundation
import Testing
import ParticipantTestSupport

/// What running the Debian package under a real systemd showed (scripts/test-package), kept fixed
/// here without one. (The other finding, libdispatch's "Failed to set thread priority" lines, comes
/// from the static runtime of the release binaries only; scripts/test-package checks LimitNICE= there.)
@Suite struct PackagedUnitTests {
    static let repository = Repository.root
    static let unitPath = repository + "/systemd/participantd.service"

    static func unitSettings(_ name: String) throws -> [String] {
        try String(contentsOfFile: unitPath, encoding: .utf8).split(separator: "\n")
            .filter { $0.hasPrefix(name + "=") }
            .map { String($0.dropFirst(name.count + 1)) }
    }

    /// A minimal Debian has no /bin/kill (procps), and ExecReload failed with 203/EXEC there.
    @Test("Every program the unit runs comes from an Essential package or one the .deb depends on")
    func unitProgramsAreDependedOn() async throws {
        let depends = try String(contentsOfFile: Self.repository + "/packaging/debian/depends", encoding: .utf8)
            .split(separator: ",")
            .compactMap { $0.split(whereSeparator: \.isWhitespace).first.map(String.init) }
        var programs: [String] = []
        for setting in ["ExecStartPre", "ExecStart", "ExecStartPost", "ExecReload", "ExecStop", "ExecStopPost"] {
            for line in try Self.unitSettings(setting) {
                // The first word, less systemd's prefixes (-, @, +, !, :).
                let command = String(line.split(separator: " ").first ?? "").trimmingCharacters(in: CharacterSet(charactersIn: "-@+!:"))
                programs.append(command)
            }
        }
        #expect(programs.contains("/bin/kill"), "\(programs)")
        for program in programs where !program.hasSuffix("/participantd") {
            #expect(program.hasPrefix("/"), "\(program): systemd 252 wants an absolute path")
            let (status, owner, errors) = try await ChildProcess.run("/usr/bin/dpkg", ["-S", program])
            try #require(status == 0, "no Debian package has \(program): \(errors)")
            let package = String(owner.split(separator: ":").first ?? "")
            let (_, essential, _) = try await ChildProcess.run("/usr/bin/dpkg-query", ["-W", "-f=${Essential}", package])
            #expect(essential == "yes" || depends.contains(package),
                    "\(program) is in \(package), which is not Essential and not in packaging/debian/depends (\(depends))")
        }
    }

    @Test("The socket's group is the clients' own, not the daemon's; the state folder (the outbox, every program's tokens) is the daemon user's alone; the configuration is not every user's; no core dumps")
    func clientsCannotReadTheOutbox() throws {
        let socket = try String(contentsOfFile: Self.repository + "/systemd/participantd.socket", encoding: .utf8)
        let socketGroup = socket.split(separator: "\n").first { $0.hasPrefix("SocketGroup=") }.map { String($0.dropFirst("SocketGroup=".count)) }
        #expect(socketGroup == "participantd-clients")
        #expect(try Self.unitSettings("Group") == ["participantd"])
        #expect(try Self.unitSettings("SupplementaryGroups").isEmpty, "the daemon needs no client group")
        #expect(try Self.unitSettings("StateDirectoryMode") == ["0700"])
        let postinst = try String(contentsOfFile: Self.repository + "/packaging/debian/postinst", encoding: .utf8)
        #expect(postinst.contains("addgroup --system --quiet participantd-clients"))
        #expect(postinst.contains("install -d -o participantd -g participantd -m 0700 /var/lib/participantd"))
        let install = try String(contentsOfFile: Self.repository + "/scripts/install", encoding: .utf8)
        #expect(install.contains("groupadd --system participantd-clients"))
        // The configuration (it may hold a proxy password) is root's and the daemon's group's only.
        #expect(postinst.contains("chown root:participantd /etc/participantd/participantd.yaml") && postinst.contains("chmod 0640 /etc/participantd/participantd.yaml"))
        #expect(install.contains("install -m 0640 $config_owner config/participantd.yaml \"$config\""))
        #expect(try Self.unitSettings("LimitCORE") == ["0"], "no core dump of tokens")
    }
}
