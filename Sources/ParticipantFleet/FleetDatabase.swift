import Foundation
import Logging
import NIOSSL
import PostgresNIO

/// The fleet's PostgreSQL database: its address, its schema and the statements the fleet runs.
/// It holds each instance's token bucket and the hosts that share it, never an event or a token.
public enum FleetDatabase {
    /// Why a `fleet.postgresURL` cannot be used.
    public struct AddressError: Error, Sendable {
        public var rule: String
    }

    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=disable|prefer|require|verify-full]`.
    ///
    /// Parsed here by hand (with Foundation's `URLComponents`): postgres-nio's client takes the
    /// parts, not a URL, and PostgresKit, which parses one, would bring SQLKit for nothing else.
    public struct Address: Sendable, Equatable, CustomStringConvertible {
        public var host: String
        public var port: Int
        public var user: String
        /// Never shown: not in ``description``, not in a log, not in an answer.
        public var password: String?
        public var database: String
        public var sslMode: String
        /// A PEM bundle trusted besides the system's roots when the certificate is checked
        /// (`fleet.postgresCAFile`): a company CA, or the server's own certificate.
        public var caFile: String?

        public init(url text: String) throws(AddressError) {
            guard let url = URLComponents(string: text), ["postgres", "postgresql"].contains(url.scheme ?? "") else {
                throw AddressError(rule: "must be a URL postgres://USER@HOST:PORT/DATABASE, got \"\(Self.withoutPassword(text))\"")
            }
            guard let host = url.host, !host.isEmpty else { throw AddressError(rule: "names no host") }
            guard let user = url.user, !user.isEmpty else { throw AddressError(rule: "names no user (postgres://USER@HOST/DATABASE)") }
            let database = String(url.path.drop(while: { $0 == "/" }))
            guard !database.isEmpty else { throw AddressError(rule: "names no database (postgres://USER@HOST/DATABASE)") }
            self.host = host
            self.port = url.port ?? 5432
            self.user = user.removingPercentEncoding ?? user
            self.password = url.password.map { $0.removingPercentEncoding ?? $0 }
            self.database = database
            let mode = url.queryItems?.first(where: { $0.name == "sslmode" })?.value ?? "prefer"
            guard ["disable", "prefer", "require", "verify-ca", "verify-full"].contains(mode) else {
                throw AddressError(rule: "sslmode must be disable, prefer, require, verify-ca or verify-full, got \"\(mode)\"")
            }
            self.sslMode = mode
            if let other = url.queryItems?.first(where: { $0.name != "sslmode" }) {
                throw AddressError(rule: "takes only the parameter sslmode, not \(other.name)")
            }
        }

        /// The URL without its password.
        public var description: String {
            let host = self.host.contains(":") ? "[\(self.host)]" : self.host
            return "postgres://\(user)@\(host):\(port)/\(database)?sslmode=\(sslMode)"
        }

        static func withoutPassword(_ text: String) -> String {
            guard var url = URLComponents(string: text), url.password != nil else { return text }
            url.password = "***"
            return url.string ?? "(a URL with a password)"
        }

        /// postgres-nio's configuration: TLS as `sslmode` asks, with the system's trust roots
        /// (`require` encrypts without checking the certificate, as libpq does).
        func clientConfiguration(connectTimeout: Duration) -> PostgresClient.Configuration {
            let mode: PostgresClient.Configuration.TLS
            switch (sslMode, tlsConfiguration) {
            case (_, nil): mode = .disable
            case ("prefer", let tls?): mode = .prefer(tls)
            case (_, let tls?): mode = .require(tls)
            }
            var configuration = PostgresClient.Configuration(host: host, port: port, username: user, password: password, database: database, tls: mode)
            configuration.options.connectTimeout = connectTimeout
            configuration.options.maximumConnections = 4
            return configuration
        }

        /// TLS as `sslmode` asks: none for `disable`; `prefer` and `require` encrypt without
        /// checking the certificate, as libpq does (a man in the middle could then ask for the
        /// password); `verify-ca` checks it against the system's roots and `caFile`, `verify-full`
        /// the host name too.
        var tlsConfiguration: TLSConfiguration? {
            var tls = TLSConfiguration.makeClientConfiguration()
            switch sslMode {
            case "disable": return nil
            case "prefer", "require": tls.certificateVerification = .none
            case "verify-ca": tls.certificateVerification = .noHostnameVerification
            default: break
            }
            if let caFile { tls.additionalTrustRoots = [.file(caFile)] }
            return tls
        }

        /// One connection made and closed: why the database cannot be used, in PostgreSQL's
        /// words (a refused connection, a wrong password), or `nil` when it can. The client's
        /// pool retries connections behind the statements it runs, so a statement only times out.
        func diagnose(timeout: Duration) async -> String? {
            do {
                var configuration = PostgresConnection.Configuration(
                    host: host, port: port, username: user, password: password, database: database,
                    tls: try tlsConfiguration.map { sslMode == "prefer" ? .prefer(try NIOSSLContext(configuration: $0)) : .require(try NIOSSLContext(configuration: $0)) } ?? .disable
                )
                configuration.options.connectTimeout = .init(timeout)
                let connection = try await PostgresConnection.connect(
                    on: PostgresClient.defaultEventLoopGroup.any(), configuration: configuration, id: 0,
                    logger: Logger(label: "participantd.fleet.diagnose", factory: { _ in SwiftLogNoOpLogHandler() })
                ).get()
                try? await connection.close()
                return nil
            } catch let error as PSQLError {
                if let message = error.serverInfo?[.message] { return "PostgreSQL: \(message)" }
                if let underlying = error.underlying { return "\(underlying)" }
                return "PostgreSQL: \(error.code)"
            } catch {
                return "\(error)"
            }
        }
    }

    /// Created by the first daemon that connects; every statement below names only these tables.
    static let schema: [PostgresQuery] = [
        """
        CREATE TABLE IF NOT EXISTS participantd_quota (
            instance_id text PRIMARY KEY,
            tokens double precision NOT NULL,
            rate double precision NOT NULL,
            burst double precision NOT NULL,
            current_rate double precision NOT NULL,
            refilled_at timestamptz NOT NULL,
            last_granted integer NOT NULL DEFAULT 0
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS participantd_member (
            instance_id text NOT NULL,
            host text NOT NULL,
            last_seen timestamptz NOT NULL,
            recent double precision NOT NULL DEFAULT 0,
            PRIMARY KEY (instance_id, host)
        )
        """,
    ]

    /// The bucket's row, full, unless it is there already.
    static func ensureBucket(id: String, rate: Double, burst: Int) -> PostgresQuery {
        """
        INSERT INTO participantd_quota (instance_id, tokens, rate, burst, current_rate, refilled_at)
        VALUES (\(id), \(Double(burst)), \(rate), \(Double(burst)), \(rate), statement_timestamp())
        ON CONFLICT (instance_id) DO NOTHING
        """
    }

    /// One grant: refills the bucket for the time since its last refill at its current rate,
    /// applies the 429s and successes this host saw since its last grant to the shared rate
    /// (x0.7 per 429, then +5% of the rate per success, as ``ParticipantDelivery/QuotaPacer``),
    /// keeps at most one saved token after a 429 or an outage of the database
    /// (``GrantRequest/spentElsewhere``), and takes up to `want` whole tokens: one statement, so the row's lock makes it atomic
    /// between hosts. Returns the tokens granted, the shared rate and the tokens left.
    static func grant(_ request: GrantRequest) -> PostgresQuery {
        let burst = Double(request.burst)
        return """
        UPDATE participantd_quota SET
            tokens = avail.available - LEAST(\(request.want), FLOOR(avail.available)),
            last_granted = LEAST(\(request.want), FLOOR(avail.available))::integer,
            current_rate = LEAST(\(request.rate), GREATEST(\(request.minimumRate), participantd_quota.current_rate * power(0.7::double precision, \(request.throttles)::double precision))
                                 + \(request.successes) * \(request.rate) * 0.05::double precision),
            rate = \(request.rate), burst = \(burst), refilled_at = statement_timestamp()
        FROM (SELECT instance_id,
                     CASE WHEN \(request.throttles) > 0 OR \(request.spentElsewhere) THEN LEAST(1.0, refilled) ELSE refilled END AS available
              FROM (SELECT instance_id,
                           LEAST(\(burst), tokens + GREATEST(0, EXTRACT(EPOCH FROM statement_timestamp() - refilled_at)::double precision) * current_rate) AS refilled
                    FROM participantd_quota WHERE instance_id = \(request.id) FOR UPDATE) AS refill) AS avail
        WHERE participantd_quota.instance_id = avail.instance_id
        RETURNING participantd_quota.last_granted, participantd_quota.current_rate, participantd_quota.tokens
        """
    }

    /// This host's heartbeat: it is alive, and was granted `granted` tokens since the last one
    /// (`recent` decays with a time constant of a minute, so recent / 60 is its rate).
    static func heartbeat(id: String, host: String, granted: Int) -> PostgresQuery {
        """
        INSERT INTO participantd_member (instance_id, host, last_seen, recent)
        VALUES (\(id), \(host), statement_timestamp(), \(Double(granted)))
        ON CONFLICT (instance_id, host) DO UPDATE SET
            recent = participantd_member.recent
                     * exp(-GREATEST(0, EXTRACT(EPOCH FROM statement_timestamp() - participantd_member.last_seen)::double precision) / 60)
                     + EXCLUDED.recent,
            last_seen = statement_timestamp()
        """
    }

    /// The hosts seen for an instance in the last minute, with their recent rate.
    static func members(id: String) -> PostgresQuery {
        """
        SELECT host, EXTRACT(EPOCH FROM last_seen)::double precision,
               recent * exp(-GREATEST(0, EXTRACT(EPOCH FROM statement_timestamp() - last_seen)::double precision) / 60) / 60
        FROM participantd_member
        WHERE instance_id = \(id) AND last_seen > statement_timestamp() - interval '60 seconds'
        ORDER BY host
        """
    }
}

/// What one grant asks of the shared bucket.
struct GrantRequest: Sendable, Equatable {
    var id: String
    var want: Int
    var rate: Double
    var burst: Int
    var minimumRate: Double
    /// 429s and successes this host saw since its last grant.
    var throttles: Int
    var successes: Int
    /// This host paced alone since its last grant (the database did not answer): the tokens the
    /// bucket saved meanwhile were spent by the hosts' fallback shares, so it keeps at most one.
    var spentElsewhere = false
}
