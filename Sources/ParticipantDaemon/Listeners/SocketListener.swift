import Foundation
import Hummingbird
import Logging
import ParticipantAPI
import ParticipantWire
import ServiceLifecycle

/// The Unix socket local programs talk to: one handed over by systemd (`participantd.socket`), or
/// one the daemon binds at `socket` with `socketMode`.
enum SocketListener {
    /// Where the socket comes from, decided (and checked) before anything starts.
    struct Binding: Sendable {
        /// A descriptor systemd passed; `nil`: the daemon binds `path`.
        let activated: Int32?
        let path: String
        let mode: UInt16

        /// Takes systemd's socket when there is one; otherwise refuses a path another process
        /// listens on, and makes the path's directory.
        init(configuration: DaemonConfiguration, environment: [String: String], logger: Logger) throws {
            activated = try SocketActivation.listeningSocket(environment: environment)
            mode = configuration.socketMode
            if let activated {
                path = SocketActivation.boundPath(of: activated) ?? "(passed by systemd)"
                if configuration.socketPath != DaemonConfiguration().socketPath {
                    logger.notice("The socket comes from systemd (participantd.socket); the socket and socketMode settings are not used")
                }
            } else {
                path = configuration.socketPath
                try SocketListener.checkIsFree(path)
                try SocketListener.prepareDirectory(for: path)
            }
        }

        /// What the ready notice says of the socket.
        var readyMetadata: Logger.Metadata {
            var metadata: Logger.Metadata = ["socket.path": "\(path)"]
            if activated != nil {
                metadata["socket.activated"] = "true"
            } else {
                metadata["socket.mode"] = "\(String(mode, radix: 8))"
            }
            return metadata
        }

        /// The listener serving `router` on the socket, and `hotRoutes` in its channel pipeline;
        /// it tells `readiness` once it accepts.
        func listener(router: Router<DaemonRequestContext>, hotRoutes: HotRoutes, limits: APIConfiguration, readiness: Readiness, logger: Logger) -> any Service {
            let path = path
            if let activated {
                return ActivatedListener(
                    descriptor: activated, router: router, hotRoutes: hotRoutes, limits: limits,
                    onRunning: { readiness.ready("socket", address: path) }, logger: logger
                )
            }
            let mode = mode
            return Application(
                router: router,
                server: .guardedHTTP1(limits, hotRoutes: hotRoutes),
                configuration: ApplicationConfiguration(address: .unixDomainSocket(path: path), serverName: DaemonAPI.serverName),
                onServerRunning: { _ in
                    if chmod(path, mode_t(mode)) != 0 {
                        logger.error("Cannot set the socket's mode", metadata: ["socket.path": "\(path)", "error": "\(String(cString: strerror(errno)))"])
                    }
                    readiness.ready("socket", address: path)
                },
                logger: logger
            )
        }
    }

    /// Refuses to start when something listens on the socket already: binding would unlink a live
    /// daemon's socket and leave it running unreachable. A stale file left by a crash is fine.
    ///
    /// A connection that is accepted is enough to tell, whatever listens (participantd or not);
    /// a stale file refuses it (`ECONNREFUSED`). A listener whose backlog stays full for 2 s
    /// (`EAGAIN` after the send timeout) is there all the same.
    static func checkIsFree(_ socketPath: String) throws {
        guard FileManager.default.fileExists(atPath: socketPath) else { return }
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        // A path too long: binding will say what is wrong with it.
        guard let address = UnixSocketAddress(path: socketPath) else { return }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected = address.withSocketAddress { connect(descriptor, $0, $1) }
        guard connected == 0 || errno == EAGAIN else { return }
        throw ConfigurationError(key: "socket", rule: "another process is already listening on \(socketPath)")
    }

    static func prepareDirectory(for socketPath: String) throws {
        let directory = (socketPath as NSString).deletingLastPathComponent
        guard !directory.isEmpty else { return }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw ConfigurationError(key: "socket", rule: "cannot create the directory \(directory): \(error.localizedDescription)")
        }
    }
}
