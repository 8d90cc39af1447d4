import Foundation
import Logging

/// The open-file limit the configuration needs: every listener's connections at their limit,
/// the upstream's connections of every instance, and room for the outbox (SQLite's database,
/// WAL and shared memory), the fleet's database, the journal and the rest.
public enum DescriptorLimit {
    /// Descriptors besides connections: SQLite's files, PostgreSQL, the journal, timers, pipes.
    static let reserve = 128

    /// What `configuration` needs at most.
    public static func needed(for configuration: DaemonConfiguration) -> Int {
        let listeners = 1 + (configuration.awsListen == nil ? 0 : 1) + (configuration.metricsListen == nil ? 0 : 1)
        return listeners * configuration.api.maxConnections + configuration.allInstances.count * configuration.maxConnections + reserve
    }

    /// What to do at start: raise the soft limit to `needed` when the hard limit allows it (as
    /// the unit's `LimitNOFILE=` sets both, this is for a daemon started another way); `nil`:
    /// nothing, it is high enough.
    enum Step: Equatable {
        case raise(to: UInt64)
        /// The hard limit is below what is needed: raised as far as it goes, and said.
        case tooLow(hard: UInt64)
    }

    static func step(soft: UInt64, hard: UInt64, needed: Int) -> Step? {
        let needed = UInt64(needed)
        if soft >= needed { return nil }
        return hard >= needed ? .raise(to: needed) : .tooLow(hard: hard)
    }

    /// Reads the limit in force, raises the soft limit if it must, and logs when it cannot
    /// reach what the configuration needs.
    public static func ensure(for configuration: DaemonConfiguration, logger: Logger) {
        let needed = needed(for: configuration)
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        switch step(soft: UInt64(limit.rlim_cur), hard: UInt64(limit.rlim_max), needed: needed) {
        case nil:
            return
        case .raise(let value):
            limit.rlim_cur = rlim_t(value)
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
                logger.info("Open-file limit raised to what the configuration needs", metadata: ["limit.nofile": "\(value)"])
            }
        case .tooLow(let hard):
            limit.rlim_cur = limit.rlim_max
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            logger.warning(
                "The open-file limit is below what the configuration needs: connections, the outbox or the upstream may fail with EMFILE; raise LimitNOFILE= or lower api.maxConnections",
                metadata: ["limit.nofile": "\(hard)", "limit.nofile_needed": "\(needed)"]
            )
        }
    }
}
