/// The version reported in health answers and the User-Agent.
public enum DaemonVersion {
    public static let current = "0.1.0"
}
