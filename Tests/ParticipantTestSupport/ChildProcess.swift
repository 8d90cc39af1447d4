import Foundation
import Glibc

/// The repository the tests were built from.
package enum Repository {
    /// Its root folder.
    package static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
}

/// The built executables of this package, next to the test bundle.
package enum BuiltProduct {
    package static func path(_ name: String) throws -> String {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        var candidates = [directory.appendingPathComponent(name).path]
        // `swift test` may run the bundle from elsewhere; the package's own build folder is the fallback.
        candidates.append(Repository.root + "/.build/debug/\(name)")
        guard let path = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw TimedOut(description: "\(name) is not built; run `swift build --build-tests` first (looked in \(candidates))")
        }
        return path
    }
}

/// A child process whose output is collected in memory.
///
/// Started with `posix_spawn(3)`, not Foundation's `Process`: on Linux, Swift 6.3.1's
/// `Process.run()` crashes now and then (a read past a buffer's end while it lists
/// `/proc/self/fd`, fixed in swift-corelibs-foundation after this toolchain: #5472), and this
/// suite starts hundreds of children. (swift-subprocess would do it too; its API is built around a
/// closure that owns the run, where the tests hold a child across awaits and kill it.)
package final class ChildProcess: Sendable {
    package let pid: Int32
    /// The executable's file name, for messages.
    private let name: String
    /// The `waitpid(2)` status once the process ended; `nil` while it runs.
    private let waitStatus = Locked<Int32?>(nil)
    private let output = Locked(Data())
    private let errors = Locked(Data())
    /// Pipes that reached end of file: everything the process wrote to them has been read.
    private let closedPipes = Locked(0)

    package init(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws {
        name = URL(fileURLWithPath: executable).lastPathComponent
        // Both ends close on exec: the child gets only the write ends, as 1 and 2. (The Glibc
        // module has no pipe2; a child spawned meanwhile closes them all the same: closefrom.)
        var stdout: [Int32] = [0, 0], stderr: [Int32] = [0, 0]
        guard pipe(&stdout) == 0, pipe(&stderr) == 0 else {
            throw TimedOut(description: "pipe failed: \(String(cString: strerror(errno)))")
        }
        for descriptor in stdout + stderr { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, stdout[1], 1)
        posix_spawn_file_actions_adddup2(&actions, stderr[1], 2)
        // Every other descriptor closed in the child, as Process does (glibc 2.34's
        // posix_spawn_file_actions_addclosefrom_np, which the Glibc module does not declare).
        if let closeFrom = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") {
            typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
            _ = unsafeBitCast(closeFrom, to: CloseFrom.self)(&actions, 3)
        }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        // Every signal at its default action and none blocked, as Process does: a disposition
        // this process set (ServiceLifecycle ignores SIGTERM and SIGINT to watch them through
        // Dispatch) would otherwise pass to the child, and a shell cannot trap a signal that was
        // ignored when it started.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var all = sigset_t(), none = sigset_t()
        sigfillset(&all)
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        close(stdout[1])
        close(stderr[1])
        guard spawned == 0 else {
            close(stdout[0])
            close(stderr[0])
            throw TimedOut(description: "cannot start \(executable): \(String(cString: strerror(spawned)))")
        }
        self.pid = pid
        // A blocking read loop per pipe, on a thread of its own, until end of file, so everything
        // the process wrote is read (plain read(2), retried on EINTR, as SIGCHLD from the many
        // children may interrupt it).
        for (descriptor, buffer) in [(stdout[0], output), (stderr[0], errors)] {
            Thread { [closedPipes] in
                var chunk = [UInt8](repeating: 0, count: 65_536)
                while true {
                    let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
                    if count < 0 && errno == EINTR { continue }
                    if count <= 0 { break }
                    buffer.withLock { $0.append(contentsOf: chunk[0..<count]) }
                }
                close(descriptor)
                closedPipes.withLock { $0 += 1 }
            }.start()
        }
        // Reaps the child when it ends (a blocking waitpid on a thread of its own).
        let child = pid
        Thread { [waitStatus] in
            var status: Int32 = 0
            while waitpid(child, &status, 0) < 0 && errno == EINTR {}
            waitStatus.withLock { $0 = status }
        }.start()
    }

    /// A test that failed before stopping its child does not leave it running: it is killed when
    /// the test lets go of it.
    deinit {
        if isRunning { _ = Foundation.kill(pid, SIGKILL) }
    }

    package var isRunning: Bool { waitStatus.value == nil }
    package var standardOutput: String { output.withLock { String(decoding: $0, as: UTF8.self) } }
    package var standardError: String { errors.withLock { String(decoding: $0, as: UTF8.self) } }

    package func kill(_ signal: Int32) {
        _ = Foundation.kill(pid, signal)
    }

    /// Ends the process: `signal`, then SIGKILL if it is still running after `grace`; returns once
    /// it has exited, so that no test leaves a child behind.
    package func stop(_ signal: Int32 = SIGTERM, grace: Duration = .seconds(2)) async {
        kill(signal)
        if (try? await eventually(timeout: grace, "process to exit after signal \(signal)") { !isRunning }) != nil { return }
        kill(SIGKILL)
        _ = try? await exitStatus(timeout: .seconds(10))
    }

    /// Waits for the process to end (at most `timeout`) and returns its exit status.
    package func exitStatus(timeout: Duration = .seconds(30)) async throws -> Int32 {
        try await eventually(timeout: timeout, "process \(name) to exit") { !isRunning }
        // Everything it wrote is read once both pipes are at end of file (a process it left
        // running could hold them open: then what was read in 5 s is what there is).
        try? await eventually(timeout: .seconds(5)) { closedPipes.withLock { $0 } == 2 }
        // As Process's terminationStatus: the exit status, or the signal that ended it.
        let status = waitStatus.value ?? 0
        return status & 0x7F == 0 ? (status >> 8) & 0xFF : status & 0x7F
    }

    /// Runs a command to its end, waiting at most `timeout` for it: (exit status, standard output,
    /// standard error).
    package static func run(
        _ executable: String, _ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(30)
    ) async throws -> (Int32, String, String) {
        let child = try ChildProcess(executable, arguments, environment: environment)
        let status = try await child.exitStatus(timeout: timeout)
        return (status, child.standardOutput, child.standardError)
    }
}
