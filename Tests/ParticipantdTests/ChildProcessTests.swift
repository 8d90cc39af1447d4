import Foundation
import ParticipantTestSupport
import Testing

/// The tests' child processes do not outlive them.
@Suite struct ChildProcessTests {
    @Test("A child a test lets go of without stopping it (a failed test) is killed")
    func abandonedChildIsKilled() async throws {
        var child: ChildProcess? = try ChildProcess("/bin/sleep", ["600"])
        let pid = try #require(child?.pid)
        #expect(kill(pid, 0) == 0)
        child = nil
        // Killed and reaped: the pid no longer names a process.
        try await eventually(timeout: .seconds(10), "sleep \(pid) gone") { kill(pid, 0) != 0 && errno == ESRCH }
    }
}
