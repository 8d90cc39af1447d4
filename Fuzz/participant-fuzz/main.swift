import Foundation
import ParticipantInput

// libFuzzer calls this once per input; `InputFuzzing.exercise` stops the process when a property
// breaks, which libFuzzer records as a crash with the input that caused it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let data = start.map { Data(bytes: $0, count: count) } ?? Data()
    InputFuzzing.exercise(data)
    return 0
}
