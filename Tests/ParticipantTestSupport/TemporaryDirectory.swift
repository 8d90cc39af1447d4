import Foundation

/// A temporary folder, removed when the test is done.
package struct TemporaryDirectory {
    package let path: String

    package init() throws {
        // Short: a Unix socket path must stay under 108 bytes.
        let path = "/tmp/pd-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        self.path = path
    }

    package func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}
