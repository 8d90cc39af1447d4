import Foundation

/// A file holding a secret is refused when every user may read it, as ssh refuses a private key.
enum SecretFile {
    /// The file's permission bits when others (not its owner, not its group) may read it; `nil`
    /// when they may not, or when the file cannot be examined (reading it then fails, naming it).
    static func modeIfReadableByOthers(_ path: String) -> Int? {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        let mode = Int(status.st_mode) & 0o7777
        return mode & 0o004 != 0 ? mode : nil
    }
}
