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
package final class ChildProcess: Sendable {
    private let process: Process
    private let output = Locked(Data())
    private let errors = Locked(Data())
    /// Pipes that reached end of file: everything the process wrote to them has been read.
    private let closedPipes = Locked(0)

    package init(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = FileHandle.nullDevice
        self.process = process
        // A blocking read loop per pipe, on a thread of its own, until end of file, so everything
        // the process wrote is read. (Foundation's readabilityHandler on Linux sometimes left the
        // last part of the output unread, and `availableData` stops the process with a fatal
        // error when a signal interrupts its read, as SIGCHLD from the many children may: plain
        // read(2), retried on EINTR.)
        for (pipe, buffer) in [(stdout, output), (stderr, errors)] {
            let handle = pipe.fileHandleForReading
            Thread { [closedPipes] in
                var chunk = [UInt8](repeating: 0, count: 65_536)
                while true {
                    let count = chunk.withUnsafeMutableBytes { Glibc.read(handle.fileDescriptor, $0.baseAddress, $0.count) }
                    if count < 0 && errno == EINTR { continue }
                    if count <= 0 { break }
                    buffer.withLock { $0.append(contentsOf: chunk[0..<count]) }
                }
                closedPipes.withLock { $0 += 1 }
            }.start()
        }
        try process.run()
    }

    /// A test that failed before stopping its child does not leave it running: it is killed when
    /// the test lets go of it.
    deinit {
        if process.isRunning { _ = Foundation.kill(process.processIdentifier, SIGKILL) }
    }

    package var pid: Int32 { process.processIdentifier }
    package var isRunning: Bool { process.isRunning }
    package var standardOutput: String { output.withLock { String(decoding: $0, as: UTF8.self) } }
    package var standardError: String { errors.withLock { String(decoding: $0, as: UTF8.self) } }

    package func kill(_ signal: Int32) {
        _ = Foundation.kill(process.processIdentifier, signal)
    }

    /// Ends the process: `signal`, then SIGKILL if it is still running after `grace`; returns once
    /// it has exited, so that no test leaves a child behind.
    package func stop(_ signal: Int32 = SIGTERM, grace: Duration = .seconds(2)) async {
        kill(signal)
        if (try? await eventually(timeout: grace, "process to exit after signal \(signal)") { !process.isRunning }) != nil { return }
        kill(SIGKILL)
        _ = try? await exitStatus(timeout: .seconds(10))
    }

    /// Waits for the process to end (at most `timeout`) and returns its exit status.
    package func exitStatus(timeout: Duration = .seconds(30)) async throws -> Int32 {
        try await eventually(timeout: timeout, "process \(process.executableURL?.lastPathComponent ?? "") to exit") { !process.isRunning }
        // Everything it wrote is read once both pipes are at end of file (a process it left
        // running could hold them open: then what was read in 5 s is what there is).
        try? await eventually(timeout: .seconds(5)) { closedPipes.withLock { $0 } == 2 }
        return process.terminationStatus
    }

    /// Runs a command to its end: (exit status, standard output, standard error).
    package static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) async throws -> (Int32, String, String) {
        let child = try ChildProcess(executable, arguments, environment: environment)
        let status = try await child.exitStatus()
        return (status, child.standardOutput, child.standardError)
    }
}
