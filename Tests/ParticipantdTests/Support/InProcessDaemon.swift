import Logging
import ParticipantDaemon
import ParticipantTestSupport
import ServiceLifecycleTestKit

/// An in-process daemon's task (`Daemon.run`), stopped as SIGTERM stops the real one.
struct InProcessDaemon: Sendable {
    let task: Task<Void, any Error>
    private let shutdown: GracefulShutdownTestTrigger

    /// Starts `Daemon.run` with `configuration`, no signal handlers, in a task that sees a
    /// graceful shutdown ``stop(grace:)`` triggers.
    static func start(configuration: DaemonConfiguration, environment: [String: String] = [:], logger: Logger) async -> InProcessDaemon {
        await testGracefulShutdown { shutdown in
            InProcessDaemon(task: Task {
                try await Daemon.run(configuration: configuration, shutdownSignals: [], environment: environment, logger: logger)
            }, shutdown: shutdown)
        }
    }

    /// Graceful shutdown first, as on SIGTERM; cancelled if it has not ended within `grace`
    /// (requests a test holds at the stand-in would keep it for `shutdown.timeoutSeconds`).
    ///
    /// Cancelled at once, the server's accept loop could drop a connection it had accepted and
    /// not yet served, and NIO stops the process for that ("Deinited NIOAsyncWriter without
    /// calling finish()", apple/swift-nio#2637): it did once, with two suites at once on two
    /// cores. On graceful shutdown the server stops accepting and serves what it accepted.
    func stop(grace: Duration = .seconds(3)) async {
        shutdown.triggerGracefulShutdown()
        let ended = Locked(false)
        let watcher = Task {
            _ = try? await task.value
            ended.withLock { $0 = true }
        }
        if (try? await eventually(timeout: grace, "the daemon stopped gracefully") { ended.value }) == nil {
            task.cancel()
        }
        await watcher.value
    }
}
