/// The `MESSAGE_ID` of each lifecycle message, so that `journalctl -x` shows what the catalog
/// (`packaging/participantd.catalog`, installed in /usr/lib/systemd/catalog/) says it means and
/// what to do, and `journalctl MESSAGE_ID=...` finds every entry of one kind. A message is known
/// by its start (the longest that matches): "Event sent as ConnectParticipant: true ..." is a sent
/// event. JournalTests checks that the catalog has each ID and that each message is logged.
package enum JournalCatalog {
    package struct Entry: Sendable {
        package let name: String
        /// The messages (their start) that carry this ID.
        package let messages: [String]
        /// 128 bits, in the 32 lower-case hex digits journald takes.
        package let id: String
    }

    package static let entries: [Entry] = [
        Entry(name: "ready", messages: ["participantd ready"], id: "413b431544304573acc6f9dbd93c5fd6"),
        Entry(name: "storageFailed", messages: ["participantd stopped: the outbox's storage failed"], id: "1be131dceea640c1959a91ad9e83a9bd"),
        Entry(name: "damaged", messages: ["participantd cannot start: the outbox database is damaged"], id: "2231cc80a9c448e09b14a03093a1d3dc"),
        Entry(name: "newerSchema", messages: ["participantd cannot start: a newer participantd migrated the outbox database"], id: "28406d415bdc4e3fa6b8669bd74f967b"),
        Entry(name: "config", messages: ["participantd cannot run: a setting is wrong"], id: "8cb5f8efebc54b57a206bf1c1092d0f8"),
        Entry(name: "stopped", messages: ["participantd stopped"], id: "b2766505aed448ae8b43216c7ad07a60"),
        Entry(name: "accepted", messages: ["Event accepted", "Message accepted", "Disconnect accepted"], id: "ce869052e37348bbb8da372b0edf021c"),
        Entry(name: "sent", messages: ["Event sent", "Message sent", "Disconnect sent"], id: "53c730555c2543ae82a9c94e4cbb7130"),
        Entry(name: "activity", messages: ["Activity: "], id: "fe5e6229586647bb9fa1d7fcd3cb1a64"),
        Entry(name: "retry", messages: ["Retry scheduled"], id: "3b6baa03e1fa48dd9fdc62176111d448"),
        Entry(name: "failed", messages: ["Event failed"], id: "64c5f32f04114c368423a94c06398c55"),
        Entry(name: "expired", messages: ["Event expired"], id: "eb78131c4e414265a7c30b0f6508b5d5"),
        Entry(name: "connectionRefused", messages: ["Connection refused by the service"], id: "5820f81bb4f549a0a983b01e0b49d89c"),
        Entry(name: "outage", messages: ["The service does not answer"], id: "75ba02f6e02f40f08dd6a1b24bd54610"),
        Entry(name: "outageEnd", messages: ["The service answers again"], id: "ffc7606c4d524001a4e4fb38eca96920"),
        Entry(name: "storageFull", messages: ["Outbox storage full"], id: "87f600ce5bd5449f959f5f61b4cc29d3"),
        Entry(name: "storageAvailable", messages: ["Outbox storage available again"], id: "7ec2ea50d22c4d2e85355a0d8f9162ea"),
        Entry(name: "fleetDown", messages: ["The fleet's database does not answer"], id: "0df640bfcf1b481982c98f0acc3d539b"),
        Entry(name: "fleetUp", messages: ["The fleet's database answers again"], id: "fc0164fed56e407191bf8f34a0d3c16b"),
        Entry(name: "watchdog", messages: ["The sender's loop has not gone round in time"], id: "f58b9f10ce9b43b79b07629595372c16"),
        Entry(name: "reloaded", messages: ["Configuration reloaded"], id: "5e4832e784ee4ed190130d72e3d97856"),
        Entry(name: "reloadFailed", messages: ["Configuration not reloaded"], id: "8f3c638d2d57403ba82021f4da6368e7"),
    ]

    /// Every message start, longest first (so the storage failure's "participantd stopped: ..."
    /// is not taken for "participantd stopped").
    private static let byPrefix: [(prefix: String, id: String)] = entries
        .flatMap { entry in entry.messages.map { ($0, entry.id) } }
        .sorted { $0.0.utf8.count > $1.0.utf8.count }

    /// The exact messages, looked up first (the lines logged most are these).
    private static let exact: [String: String] = Dictionary(byPrefix.map { ($0.prefix, $0.id) }) { first, _ in first }

    package static func messageID(for message: String) -> String? {
        if let id = exact[message] { return id }
        return byPrefix.first { message.hasPrefix($0.prefix) }?.id
    }
}
