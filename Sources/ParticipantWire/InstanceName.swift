/// The name of a Connect instance as the daemon's configuration knows it (`instances.NAME`): what a
/// submission's `instance` field, `participantctl --instance` and the SDK path prefix
/// `/instances/NAME` say. The instance configured by the top-level keys is ``defaultName``.
public enum InstanceName {
    public static let defaultName = "default"
    public static let maxLength = 64

    /// Why `name` cannot be an instance's name; `nil` when it can. Names travel in URL paths and
    /// metric labels, and are a level of configuration keys (`instances.NAME.region`): 1 to 64
    /// letters, digits, `-` or `_`.
    public static func problem(_ name: String) -> String? {
        if name.isEmpty { return "must not be empty" }
        if name.unicodeScalars.count > maxLength { return "must be at most \(maxLength) characters long" }
        let allowed = name.unicodeScalars.allSatisfy { scalar in
            switch scalar {
            case "a"..."z", "A"..."Z", "0"..."9", "-", "_": true
            default: false
            }
        }
        return allowed ? nil : "must hold only letters, digits, - and _ (got \"\(name.prefix(100))\")"
    }
}
