/// SendEvent's modelled errors and the HTTP status the service answers each with: one table, read
/// both ways, by the sender (the code an answer without one stands for) and by the SDK route (the
/// status it answers with for an event that failed with a code).
public enum ServiceErrorCode {
    /// Each modelled error code with its status (`../shared/reference.md`, "Wire format").
    public static let statuses: [(code: String, status: Int)] = [
        ("ValidationException", 400),
        ("AccessDeniedException", 403),
        ("ConflictException", 409),
        ("ThrottlingException", 429),
        ("InternalServerException", 500),
    ]

    /// The code an error answer without one stands for: the modelled code of its status, or
    /// `HTTP<status>`.
    public static func code(forStatus status: Int) -> String {
        statuses.first { $0.status == status }?.code ?? "HTTP\(status)"
    }

    /// The status the service answers with for `code`; 400 for a code it does not model.
    public static func status(forCode code: String) -> Int {
        statuses.first { $0.code == code }?.status ?? 400
    }
}
