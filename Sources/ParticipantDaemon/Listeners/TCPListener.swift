import Hummingbird
import Logging
import ParticipantAPI
import ServiceLifecycle

/// A loopback TCP listener (`aws.listen` for SDKs, `metrics.listen` for Prometheus) with the API's
/// limits; it tells the readiness its address once bound (port 0 becomes the one picked).
enum TCPListener {
    static func make(
        _ router: Router<DaemonRequestContext>, at address: ListenAddress, named name: String,
        limits: APIConfiguration, readiness: Readiness, logger: Logger
    ) -> any Service {
        Application(
            router: router,
            server: .guardedHTTP1(limits),
            configuration: ApplicationConfiguration(address: .hostname(address.host, port: address.port), serverName: DaemonAPI.serverName),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? address.port
                readiness.ready(name, address: ListenAddress(host: address.host, port: port).description)
            },
            logger: logger
        )
    }
}
