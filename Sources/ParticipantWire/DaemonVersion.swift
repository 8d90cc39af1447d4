import ParticipantVersion

/// The version reported by `--version`, in health answers and in the User-Agent: the repository's
/// (`scripts/version`: a tag, or the commit), fixed when Package.swift was read.
public enum DaemonVersion {
    public static let current = String(cString: participantd_version())
}
