import Foundation
import ParticipantTestSupport

/// A copy of a built product in `directory`, for a test that runs it as another user (the build
/// folder may sit in a private temporary folder), returned once it can be run.
///
/// A child that another test spawns while the copy is written inherits its writable descriptor
/// until the child closes it, and meanwhile the copy cannot be executed (`ETXTBSY`, "Text file
/// busy"): the copy is returned once running it works.
func executableCopy(of product: String, in directory: String) async throws -> String {
    let copy = directory + "/" + product
    if !FileManager.default.fileExists(atPath: copy) {
        try FileManager.default.copyItem(atPath: try BuiltProduct.path(product), toPath: copy)
        chmod(copy, 0o755)
    }
    try await eventually(timeout: .seconds(10), "\(copy) can be run") {
        (try? await ChildProcess.run(copy, ["--version"]))?.0 == 0
    }
    return copy
}
