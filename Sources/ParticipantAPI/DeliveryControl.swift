import ParticipantWire

/// What the API tells delivery and asks of it: the one seam between the listeners and the senders.
/// The daemon fills it with its senders and the fleet's quota; the API does not see either.
public protocol DeliveryControl: Sendable {
    /// A new event was stored for `instance`: its sender may have something to send now.
    func accepted(instance: String, kind: ItemKind)
    /// An operator made waiting events due (`participantctl flush`, `retry`): send them now.
    func flush()
    /// Requests in flight and the pacing of each instance's sender, by instance name.
    func senderStates() -> [String: SenderState]
    /// What keeps delivery from being healthy now (an outage, a fleet database that does not
    /// answer); empty when all is well.
    func healthProblems() -> [String]
    /// The fleet's shared quota; `nil`: not in a fleet.
    func fleetStats() async -> FleetStats?
}
