import ParticipantWire

/// The rules every kind of submission shares: lengths in Unicode scalars (as botocore's parameter
/// validation counts them), the ClientToken, the connection token, the instance's name.
enum FieldRules {
    static let clientTokenMaxLength = 500
    static let connectionTokenMaxLength = 1_000

    static func checkLength(_ value: String, field: String, min: Int, max: Int) throws(ValidationError) {
        // A scalar is 1 to 4 UTF-8 bytes, and the bytes are counted at once: the scalars (a walk
        // over the string, about 1,400 instructions a field of a read receipt) only when the
        // bytes alone do not decide.
        let bytes = value.utf8.count
        if bytes <= max, (bytes + 3) / 4 >= min { return }
        let length = value.unicodeScalars.count
        if length < min {
            throw ValidationError(field: field, rule: "must be at least \(min) character\(min == 1 ? "" : "s") long")
        }
        if length > max {
            throw ValidationError(field: field, rule: "must be at most \(max) characters long (got \(length))")
        }
    }

    /// Text the outbox stores whole: SQLite takes a bound string up to its first U+0000, so
    /// content holding one would be acknowledged, then stored and sent cut short (and the same
    /// ClientToken again would be a mismatch). Refused instead, naming the field.
    static func checkStorable(_ value: String, field: String) throws(ValidationError) {
        if value.utf8.contains(0) {
            throw ValidationError(field: field, rule: "must not contain U+0000 (NUL): it could not be stored and sent whole")
        }
    }

    /// A ClientToken the client set: 1 to 500 characters (an empty one is refused rather than
    /// silently replaced: the client meant to set one), none of them a control character (C0,
    /// DEL, C1): a token is shown to operators (`participantctl list`, logs), and one with escape
    /// sequences could rewrite their screen or forge table rows.
    /// Unicode's control characters (general category Cc): U+0000 to U+001F and U+007F to
    /// U+009F, a set Unicode's stability policy fixes. Compared directly: looking the category up
    /// in Unicode's tables cost about 7,000 instructions a ClientToken (BENCHMARKS.md, "Issue 31").
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }

    static func checkClientToken(_ clientToken: String?) throws(ValidationError) {
        guard let clientToken else { return }
        try checkLength(clientToken, field: "clientToken", min: 1, max: clientTokenMaxLength)
        if let control = clientToken.unicodeScalars.first(where: isControl) {
            throw ValidationError(
                field: "clientToken",
                rule: "must not contain control characters (found U+\(String(control.value, radix: 16, uppercase: true).leftPadded(to: 4)))"
            )
        }
    }

    /// The connection token: required, 1 to 1,000 characters, no control characters.
    static func connectionToken(_ connectionToken: String?) throws(ValidationError) -> String {
        guard let connectionToken else {
            throw ValidationError(field: "connectionToken", rule: "is required")
        }
        try checkLength(connectionToken, field: "connectionToken", min: 1, max: connectionTokenMaxLength)
        // It travels as an HTTP header value: control characters would break or smuggle headers.
        if connectionToken.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            throw ValidationError(field: "connectionToken", rule: "must not contain control characters (it is sent as the X-Amz-Bearer header)")
        }
        return connectionToken
    }

    /// The chat's credential: a connection token, or a participant token in its place (exactly
    /// one; the same rules for both). `connectParticipant` goes with a participant token only.
    static func credential(connectionToken: String?, participantToken: String?, connectParticipant: Bool?) throws(ValidationError) -> ChatCredential {
        switch (connectionToken, participantToken) {
        case (nil, nil):
            throw ValidationError(field: "connectionToken", rule: "is required (or participantToken in its place)")
        case (.some, .some):
            throw ValidationError(field: "participantToken", rule: "cannot be given with connectionToken: name the chat by one of them")
        case (.some(let token), nil):
            if connectParticipant != nil {
                throw ValidationError(field: "connectParticipant", rule: "applies only with participantToken (the daemon creates that connection)")
            }
            return .connection(try self.connectionToken(token))
        case (nil, .some(let token)):
            do {
                _ = try self.connectionToken(token)
            } catch {
                throw ValidationError(field: "participantToken", rule: error.rule.replacingOccurrences(of: "X-Amz-Bearer header", with: "X-Amz-Bearer header of CreateParticipantConnection"))
            }
            return .participant(token, connectParticipant: connectParticipant)
        }
    }

    /// ``credential(connectionToken:participantToken:connectParticipant:)`` as the validated
    /// submissions hold it: the connection token (empty for a participant token's chat), the
    /// participant token and its `connectParticipant`.
    static func credentialFields(
        connectionToken: String?, participantToken: String?, connectParticipant: Bool?
    ) throws(ValidationError) -> (connectionToken: String, participantToken: String?, connectParticipant: Bool?) {
        switch try credential(connectionToken: connectionToken, participantToken: participantToken, connectParticipant: connectParticipant) {
        case .connection(let token): (token, nil, nil)
        case .participant(let token, let connect): ("", token, connect)
        }
    }

    /// The instance's name, `default` when none is given.
    static func instance(_ instance: String?) throws(ValidationError) -> String {
        let instance = instance ?? InstanceName.defaultName
        if let problem = InstanceName.problem(instance) {
            throw ValidationError(field: "instance", rule: problem)
        }
        return instance
    }
}

extension String {
    /// Left-padded with zeros to `width` characters.
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
