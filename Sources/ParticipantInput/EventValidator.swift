import Foundation
import ParticipantWire

/// A submission that passed every rule of SendEvent's input: ready to be stored.
public struct ValidatedEvent: Sendable, Equatable {
    public var contentType: EventContentType
    public var content: String?
    /// `nil` when the client sent none: the outbox generates one, once.
    public var clientToken: String?
    /// The connection token it is sent with; empty when the chat is named by a participant token.
    public var connectionToken: String
    /// The participant's token, when it names the chat in place of a connection token.
    public var participantToken: String? = nil
    /// With `participantToken`: CreateParticipantConnection's `ConnectParticipant` (`nil`: the default).
    public var connectParticipant: Bool? = nil
    /// The receipt's `messageId` (receipts only): what receipt coalescing compares.
    public var messageId: String?
    /// Things the client should know although the event was accepted (a deprecated content type).
    public var warnings: [String]
    /// The Connect instance it is for (a well-formed name; whether it is configured is the API's question).
    public var instance: String = InstanceName.defaultName
}

/// A field that breaks a rule of SendEvent's input.
public struct ValidationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The field as the client named it (`contentType`, `content`, ...).
    public var field: String
    public var rule: String

    public var description: String { "\(field): \(rule)" }

    public init(field: String, rule: String) {
        self.field = field
        self.rule = rule
    }
}

/// The input rules of SendEvent, from botocore's service model and the API documents.
///
/// Lengths are counted in Unicode scalars, as botocore's parameter validation counts them.
public enum EventValidator {
    public static let contentTypeMaxLength = 100
    public static let contentMaxLength = 16_384
    public static let clientTokenMaxLength = FieldRules.clientTokenMaxLength
    public static let connectionTokenMaxLength = FieldRules.connectionTokenMaxLength

    public static let deprecationWarning =
        "contentType \(EventContentType.connectionAcknowledged.rawValue) is no longer maintained by the service (since 2024-12-31); it is stored and sent, but consider not sending it"

    public static func validate(_ submission: EventSubmission) throws(ValidationError) -> ValidatedEvent {
        guard let rawContentType = submission.contentType else {
            throw ValidationError(field: "contentType", rule: "is required")
        }
        try FieldRules.checkLength(rawContentType, field: "contentType", min: 1, max: contentTypeMaxLength)
        guard let contentType = EventContentType(rawValue: rawContentType) else {
            let allowed = EventContentType.allCases.map(\.rawValue).joined(separator: ", ")
            throw ValidationError(field: "contentType", rule: "must be one of \(allowed)")
        }

        if let content = submission.content {
            try FieldRules.checkLength(content, field: "content", min: 1, max: contentMaxLength)
            try FieldRules.checkStorable(content, field: "content")
        }
        var messageId: String?
        if contentType.isReceipt {
            messageId = try receiptMessageId(submission.content)
        }

        try FieldRules.checkClientToken(submission.clientToken)
        let (connectionToken, participantToken, connectParticipant) = try FieldRules.credentialFields(
            connectionToken: submission.connectionToken, participantToken: submission.participantToken, connectParticipant: submission.connectParticipant
        )
        let instance = try FieldRules.instance(submission.instance)

        return ValidatedEvent(
            contentType: contentType,
            content: submission.content,
            clientToken: submission.clientToken,
            connectionToken: connectionToken,
            participantToken: participantToken,
            connectParticipant: connectParticipant,
            messageId: messageId,
            warnings: contentType.isDeprecated ? [deprecationWarning] : [],
            instance: instance
        )
    }

    private static func receiptMessageId(_ content: String?) throws(ValidationError) -> String {
        let rule = "for a message receipt must be a JSON object with a non-empty string \"messageId\", e.g. {\"messageId\":\"11111111-aaaa-bbbb-cccc-EXAMPLE01234\"}"
        guard let content else { throw ValidationError(field: "content", rule: rule) }
        let messageId: String?
        // The content in place, and its keys told apart pairwise (a receipt has one or two): a
        // Data and a Set of keys cost more than the reading (BENCHMARKS.md, "Issue 31, sixth round").
        if let members = FlatJSON.members(content), !members.indices.contains(where: { index in
            members[..<index].contains { $0.key == members[index].key }
        }) {
            // The common receipt, a flat object, without JSONSerialization (FlatJSON).
            messageId = members.first { $0.key == "messageId" }.flatMap { if case .string(let id) = $0.value { id } else { nil } }
        } else {
            let object = try? JSONSerialization.jsonObject(with: Data(content.utf8)) as? [String: Any]
            messageId = object?["messageId"] as? String
        }
        guard let messageId, !messageId.isEmpty else {
            throw ValidationError(field: "content", rule: rule)
        }
        return messageId
    }
}
