import ParticipantAPI
import ParticipantDelivery
import ParticipantFleet
import ParticipantWire

/// The API's seam to delivery, filled with the daemon's senders and (in a fleet) the shared quota.
struct SenderControl: DeliveryControl {
    let senders: InstanceSenders
    let fleet: FleetQuota?

    func accepted(instance: String, kind: ItemKind) { senders.wake(instance, kind: kind) }

    func flush() { senders.flush() }

    func senderStates() -> [String: SenderState] {
        Dictionary(uniqueKeysWithValues: senders.senders.map { sender in
            (sender.instance, SenderState(
                inFlight: sender.requestsInFlight, quotaRate: sender.quotaRate, quotaTokens: sender.quotaTokens,
                problems: sender.healthProblems, outage: sender.isInOutage
            ))
        })
    }

    func healthProblems() -> [String] { senders.healthProblems }

    func fleetStats() async -> FleetStats? { fleet?.stats() }
}
