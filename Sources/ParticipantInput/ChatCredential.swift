/// How a submission names its chat: by the connection token it is sent with, or by the
/// participant's token, from which the daemon creates (and renews) the connection itself.
public enum ChatCredential: Sendable, Equatable {
    case connection(String)
    /// `connectParticipant`: what the submission asked of CreateParticipantConnection's
    /// `ConnectParticipant` (`nil`: the configured default).
    case participant(String, connectParticipant: Bool?)

    /// The token the chat is named by, either kind.
    public var token: String {
        switch self {
        case .connection(let token), .participant(let token, _): token
        }
    }
}
