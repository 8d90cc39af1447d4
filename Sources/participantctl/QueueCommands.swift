import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import ParticipantClient
import ParticipantWire

// The queue commands: participantd's postqueue/postsuper. All go over the socket; none opens the
// database. Connection tokens are never shown, only their hash (16 hex digits of the SHA-256).
// Each works on the caller's own items (another user's are "not found"), or for an
// administrator on everyone's (--owner: one user's).

struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Lists events: waiting ones oldest first, others newest first.",
        discussion: "A table by default; --json prints one JSON object per line."
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: "Only events in this state: \(EventState.allCases.map(\.rawValue).joined(separator: ", ")).",
            completion: .list(EventState.allCases.map(\.rawValue)))
    var state: String?

    @Option(help: "Only events of this connection: its hash, or the first 4 or more hex digits of it.")
    var connectionTokenHash: String?

    @Option(help: "Only events of this Connect instance (its configured name).")
    var instance: String?

    @OptionGroup var owner: OwnerOptions

    @Option(help: "At most this many events (1 to 10000).")
    var limit: Int = 100

    @Flag(help: "JSON lines instead of a table.")
    var json = false

    func validate() throws {
        if let state, EventState(rawValue: state) == nil {
            throw ValidationError("--state must be one of \(EventState.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(state)\"")
        }
        if let hash = connectionTokenHash, !(4...16).contains(hash.count) || !hash.allSatisfy(\.isHexDigit) {
            throw ValidationError("--connection-token-hash must be 4 to 16 hexadecimal digits, got \"\(hash)\"")
        }
        guard (1...10_000).contains(limit) else {
            throw ValidationError("--limit must be from 1 to 10000, got \(limit)")
        }
    }

    func run() async throws {
        let events: [EventRecord]
        do {
            events = try await global.client.list(state: state.flatMap(EventState.init), connectionHash: connectionTokenHash, instance: instance, owner: owner.uid, limit: limit)
        } catch {
            fail(error, operation: "List")
        }
        if json {
            let encoder = WireCoding.encoder()
            for event in events {
                if let data = try? encoder.encode(event) { print(TerminalText.escapedJSON(String(decoding: data, as: UTF8.self))) }
            }
            return
        }
        print(EventTable.render(events))
    }
}

struct Retry: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Queues a failed or expired event again, due now, with a new deadline (same ClientToken).",
        discussion: """
            A failed or expired item's connection token is erased when it ends: give a current one \
            with --connection-token (the item then belongs to that connection). Without it, only \
            an item of a chat named by a participant token is sent again, while participantd keeps \
            that chat's connection. --all-failed takes those.
            """
    )

    @OptionGroup var global: GlobalOptions

    @OptionGroup var owner: OwnerOptions

    @Argument(help: "The event's ClientToken.")
    var clientToken: String?

    @Flag(help: "Every failed event that can be sent without a new connection token, instead of one.")
    var allFailed = false

    @Option(help: "The connection token to send the event with (its own was erased when it ended).")
    var connectionToken: String?

    func validate() throws {
        guard (clientToken == nil) != (!allFailed) else {
            throw ValidationError("give either a ClientToken or --all-failed")
        }
        if allFailed, connectionToken != nil {
            throw ValidationError("--connection-token goes with one ClientToken, not --all-failed")
        }
    }

    func run() async throws {
        do {
            if allFailed {
                printJSON(try await global.client.retryAllFailed(owner: owner.uid))
            } else if let clientToken {
                printJSON(try await global.client.retry(clientToken: clientToken, connectionToken: connectionToken, owner: owner.uid))
            }
        } catch {
            fail(error, operation: "Retry")
        }
    }
}

/// hold, release, delete: one event by ClientToken.
protocol SingleEventCommand: AsyncParsableCommand {
    static var action: DaemonClient.QueueAction { get }
    var global: GlobalOptions { get }
    var owner: OwnerOptions { get }
    var clientToken: String { get }
}

extension SingleEventCommand {
    func run() async throws {
        do {
            printJSON(try await global.client.change(Self.action, clientToken: clientToken, owner: owner.uid))
        } catch {
            fail(error, operation: Self.action.rawValue.prefix(1).uppercased() + Self.action.rawValue.dropFirst())
        }
    }
}

struct Hold: SingleEventCommand {
    static let configuration = CommandConfiguration(
        abstract: "Puts a queued event aside: not sent, not holding up its connection, until released (at most outbox.holdMaxSeconds, 24 h: then it expires)."
    )
    static let action = DaemonClient.QueueAction.hold
    @OptionGroup var global: GlobalOptions
    @OptionGroup var owner: OwnerOptions
    @Argument(help: "The event's ClientToken.") var clientToken: String
}

struct Release: SingleEventCommand {
    static let configuration = CommandConfiguration(
        abstract: "Queues a held event again, due now (it expires instead if its deadline passed)."
    )
    static let action = DaemonClient.QueueAction.release
    @OptionGroup var global: GlobalOptions
    @OptionGroup var owner: OwnerOptions
    @Argument(help: "The event's ClientToken.") var clientToken: String
}

struct Delete: SingleEventCommand {
    static let configuration = CommandConfiguration(
        abstract: "Deletes an event that is not in flight; its ClientToken may then be used for a new event."
    )
    static let action = DaemonClient.QueueAction.delete
    @OptionGroup var global: GlobalOptions
    @OptionGroup var owner: OwnerOptions
    @Argument(help: "The event's ClientToken.") var clientToken: String
}

struct Flush: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sends waiting events now, ignoring their retry backoff (not the quota)."
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var owner: OwnerOptions

    func run() async throws {
        do {
            printJSON(try await global.client.flush(owner: owner.uid))
        } catch {
            fail(error, operation: "Flush")
        }
    }
}

struct Stats: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Prints counts by state, the oldest waiting event's age, the send rate and the pacing."
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var owner: OwnerOptions

    func run() async throws {
        do {
            printJSON(try await global.client.stats(owner: owner.uid))
        } catch {
            fail(error, operation: "Stats")
        }
    }
}

struct Backup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copies the outbox, consistent, while participantd runs (root, participantd's user and access.adminGroups only).",
        discussion: """
            The copy is an SQLite file checked by the daemon (quick_check), written with mode 0600: it holds every \
            user's events and their connection tokens. To restore it: stop participantd, put it in place of the \
            database (removing the old -wal and -shm files), start participantd (README, "Backup and restore").
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The new file to write (an existing one is refused).")
    var file: String

    struct Output: Encodable {
        var file: String
        var bytes: Int64
    }

    func run() async throws {
        do {
            printJSON(Output(file: file, bytes: try await global.client.backup(to: file)))
        } catch {
            fail(error, operation: "Backup")
        }
    }
}
