import Foundation
import Logging
import ParticipantDelivery
import ParticipantOutbox
import ParticipantWire
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// The fleet's side of pacing: keeps each instance's ``FleetPacer`` supplied with tokens from
/// the shared bucket in PostgreSQL, reports 429s and successes into it, and announces this host
/// (a heartbeat row per instance), so that every participantd using the same database keeps,
/// together, to each Connect instance's quota.
///
/// When the database does not answer (or takes longer than ``statementTimeout``) each pacer
/// goes on alone at its fallback share; this service tries again with growing delays (0.1 s to
/// 5 s) and sharing resumes at the first answer. Nothing is refused or lost meanwhile.
public final class FleetQuota: Service, Sendable {
    public let pacers: [FleetPacer]
    public let host: String
    public let address: FleetDatabase.Address
    private let client: PostgresClient
    private let logger: Logger
    private let doorbell = Doorbell()
    /// Monotonic time, the same readings as the senders' (the pacers compare them), and the sleeps.
    private let stopwatch: Stopwatch
    private let wall: WallClock
    private let members = Mutex<[String: [FleetMember]]>([:])
    private let granted = Mutex<[String: Int]>([:])
    private let started = Mutex(false)

    /// The longest one statement may take before the database counts as not answering.
    public static let statementTimeout: Duration = .seconds(1)
    /// How often each instance's heartbeat and member list are written and read.
    public static let heartbeatInterval: Duration = .seconds(1)

    public init(address: FleetDatabase.Address, host: String, pacers: [FleetPacer], stopwatch: Stopwatch, wall: WallClock = .system, logger: Logger) {
        self.address = address
        self.host = host
        self.pacers = pacers
        self.stopwatch = stopwatch
        self.wall = wall
        var logger = logger
        logger[metadataKey: "fleet.database"] = "\(address)"
        self.logger = logger
        self.client = PostgresClient(configuration: address.clientConfiguration(connectTimeout: Self.statementTimeout), backgroundLogger: Logger(label: "participantd.fleet.postgres", factory: { _ in SwiftLogNoOpLogHandler() }))
        for pacer in pacers {
            pacer.whenWanting { [doorbell] in doorbell.ring() }
        }
    }

    public func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.client.run() }
            await cancelWhenGracefulShutdown {
                await self.supply()
            }
            group.cancelAll()
        }
    }

    /// The loop: a grant for each pacer that wants one, heartbeats every second, and after a
    /// failure a wait that grows until the database answers.
    private func supply() async {
        var failures = 0
        var lastHeartbeat: Duration?
        var prepared = false
        var down: (since: Date, error: String)?
        while !Task.isCancelled {
            do {
                if !prepared {
                    try await prepare()
                    prepared = true
                }
                var nextWake = FleetRules.grantLifetime
                for pacer in pacers {
                    guard let request = pacer.nextRequest() else { continue }
                    do {
                        let answer = try await grant(request)
                        pacer.granted(answer.granted, sharedRate: answer.rate, now: stopwatch.elapsed)
                        granted.withLock { $0[pacer.id, default: 0] += answer.granted }
                        if answer.granted < request.want {
                            // The bucket is empty for now: ask again when it has a whole token.
                            let seconds = max(0.01, (1 - answer.left.truncatingRemainder(dividingBy: 1)) / max(answer.rate, 0.01))
                            nextWake = min(nextWake, .microseconds((seconds * 1_000_000).rounded(.up)))
                        }
                    } catch {
                        pacer.notReported(request)
                        throw error
                    }
                }
                if lastHeartbeat.map({ stopwatch.elapsed - $0 >= Self.heartbeatInterval }) ?? true {
                    try await heartbeat()
                    lastHeartbeat = stopwatch.elapsed
                }
                for pacer in pacers { pacer.answered() }
                if let outage = down {
                    logger.notice("The fleet's database answers again; the quota is shared again", metadata: [
                        "fleet.down_since": "\(WireCoding.formatTimestamp(outage.since))",
                    ])
                    down = nil
                }
                failures = 0
                let untilHeartbeat = max(.milliseconds(1), Self.heartbeatInterval - (stopwatch.elapsed - (lastHeartbeat ?? .zero)))
                await doorbell.wait(timeout: min(nextWake, untilHeartbeat), on: stopwatch.clock)
            } catch {
                if Task.isCancelled { break }
                failures += 1
                prepared = prepared && failures < 3
                var description = Self.describe(error)
                // A server that accepts connections and never answers leaves the diagnosis waiting too.
                if case FleetError.timeout = error, let diagnosis = try? await withinDeadline(Self.statementTimeout, on: stopwatch, {
                    await self.address.diagnose(timeout: Self.statementTimeout)
                }), let reason = diagnosis {
                    description = reason
                }
                let since = down?.since ?? wall.now()
                for pacer in pacers {
                    pacer.databaseFailed(problem: "the fleet's database \(address) has not answered since \(WireCoding.formatTimestamp(since)) (\(description)); sending at \(Self.format(pacer.fallbackRate))/s, this host's fallback share, until it answers", now: stopwatch.elapsed)
                }
                if down == nil {
                    down = (since, description)
                    logger.warning("The fleet's database does not answer; each instance is paced at this host's fallback share until it does", metadata: [
                        "error": "\(description)",
                        "fleet.fallback_rates": "\(pacers.map { "\($0.instance)=\(Self.format($0.fallbackRate))/s" }.joined(separator: ","))",
                    ])
                }
                await doorbell.wait(timeout: FleetRules.reconnectDelay(failures: failures), on: stopwatch.clock)
            }
        }
    }

    private func prepare() async throws {
        for statement in FleetDatabase.schema {
            do {
                try await run(statement)
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {
                // Another daemon created it at the same moment.
            }
        }
        for pacer in pacers {
            let configuration = pacer.configuration
            try await run(FleetDatabase.ensureBucket(id: pacer.id, rate: configuration.rate, burst: configuration.burst))
        }
    }

    private func grant(_ request: GrantRequest) async throws -> (granted: Int, rate: Double, left: Double) {
        let rows = try await timed {
            try await self.client.query(FleetDatabase.grant(request), logger: self.logger).collect()
        }
        guard let row = rows.first else {
            // The row is gone (deleted by hand): make it again, and ask next round.
            try await run(FleetDatabase.ensureBucket(id: request.id, rate: request.rate, burst: request.burst))
            return (0, request.rate, 0)
        }
        let (granted, rate, left) = try row.decode((Int, Double, Double).self)
        return (granted, rate, left)
    }

    private func heartbeat() async throws {
        for pacer in pacers {
            let count = granted.withLock { granted in
                defer { granted[pacer.id] = 0 }
                return granted[pacer.id] ?? 0
            }
            try await run(FleetDatabase.heartbeat(id: pacer.id, host: host, granted: count))
            let rows = try await timed {
                try await self.client.query(FleetDatabase.members(id: pacer.id), logger: self.logger).collect()
            }
            var seen: [FleetMember] = []
            for row in rows {
                let (host, lastSeen, rate) = try row.decode((String, Double, Double).self)
                seen.append(FleetMember(host: host, lastSeen: Date(timeIntervalSince1970: lastSeen), recentRate: rate, share: 0))
            }
            let total = seen.reduce(0) { $0 + $1.recentRate }
            seen = seen.map { member in
                var member = member
                member.share = total > 0 ? member.recentRate / total : 0
                return member
            }
            pacer.sawHosts(seen.count)
            members.withLock { $0[pacer.id] = seen }
        }
    }

    private func run(_ query: PostgresQuery) async throws {
        try await timed {
            _ = try await self.client.query(query, logger: self.logger).collect()
        }
    }

    /// `work`, or an error once it has taken ``statementTimeout``: a database that hangs is one
    /// that does not answer. A statement given up on is not waited for (``withinDeadline``): it
    /// holds its pooled connection until the server answers or the connection closes.
    private func timed<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) async throws -> T {
        guard let value = try await withinDeadline(Self.statementTimeout, on: stopwatch, work) else {
            throw FleetError.timeout(Self.statementTimeout)
        }
        return value
    }

    /// What `participantctl stats` shows of the fleet.
    public func stats() -> FleetStats {
        let members = members.withLock { $0 }
        let problem = pacers.lazy.compactMap(\.problem).first
        return FleetStats(
            host: host, database: "\(address)", shared: problem == nil, problem: problem,
            instances: pacers.map { pacer in
                FleetInstance(name: pacer.instance, id: pacer.id, rate: pacer.currentRate, fallbackRate: pacer.fallbackRate, members: members[pacer.id] ?? [])
            }
        )
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] { return "PostgreSQL: \(message)" }
            return "PostgreSQL: \(error.code)"
        }
        return "\(error)"
    }

    static func format(_ rate: Double) -> String {
        String(format: "%.2f", rate)
    }
}

enum FleetError: Error, CustomStringConvertible {
    case timeout(Duration)

    var description: String {
        switch self {
        case .timeout(let limit): "no answer within \(limit.timeInterval) s"
        }
    }
}
