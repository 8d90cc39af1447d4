import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import ParticipantClient
import ParticipantWire

/// `participantctl send-events --file FILE`: many events, in batches (`POST /v1/events/batch`).
struct SendEvents: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send-events",
        abstract: "Hands many events to participantd in batches, each stored in one group commit.",
        discussion: """
            FILE (or - for standard input) holds one JSON submission per line, as POST /v1/events \
            takes it: {"contentType", "content", "clientToken", "connectionToken"}. Blank lines are \
            skipped. One result per line is printed, in order: {"line", "status", "body"}, where \
            status and body are what POST /v1/events answers for that event alone (202 stored, 200 \
            the same ClientToken again, 4xx/5xx with {"code", "message"}). Exit status: 0 when every \
            event was stored, 254 when any was not, 253 when participantd cannot be reached, 252 for \
            a usage error.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: "The file of submissions, one JSON object per line; - for standard input.")
    var file: String

    @Option(help: "Events per batch at most (the daemon's api.maxBatchEvents, 500 by default, is the upper bound).")
    var batchSize: Int = 500

    @Option(help: "Bytes per batch at most (the daemon's api.maxBatchBytes, 2097152 by default, is the upper bound).")
    var batchBytes: Int = 2_097_152

    /// One line's result, as printed.
    struct LineResult: Encodable {
        var line: Int
        var status: Int
        var body: BatchResult.Body
    }

    func run() async throws {
        guard batchSize > 0, batchBytes > 0 else {
            fail(usage: UsageError("--batch-size and --batch-bytes take a number greater than 0"))
        }
        let input: Data
        do {
            input = file == "-"
                ? try readStandardInput()
                : try Data(contentsOf: URL(fileURLWithPath: file))
        } catch {
            fail(usage: UsageError("cannot read \(file): \(error)"))
        }

        // Each line's JSON object, or why it is not one (answered here, not sent).
        var pending: [(line: Int, object: Data)] = []
        var results: [Int: BatchResult] = [:]
        var order: [Int] = []
        for (index, text) in input.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            let line = index + 1
            let object = Data(text)
            if object.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: "\r") }) { continue }
            order.append(line)
            if JSONValue.object(in: object) != nil {
                pending.append((line, object))
            } else {
                results[line] = BatchResult(status: 400, body: .error(ErrorBody(
                    code: APIErrorCode.malformedRequest, message: "line \(line) is not a JSON object; each line must be one submission"
                )))
            }
        }

        let client = global.client
        var start = 0
        while start < pending.count {
            var end = start
            var bytes = 0
            while end < pending.count, end - start < batchSize, end == start || bytes + pending[end].object.count + 1 <= batchBytes - 16 {
                bytes += pending[end].object.count + 1
                end += 1
            }
            let batch = pending[start..<end]
            do {
                let answer = try await client.submitBatch(jsonObjects: batch.map(\.object))
                for (entry, result) in zip(batch, answer.results) {
                    results[entry.line] = result
                }
            } catch .api(let status, let body) {
                // The batch as a whole was refused: each of its lines gets that answer.
                for entry in batch {
                    results[entry.line] = BatchResult(status: status, body: .error(body))
                }
            } catch {
                fail(error, operation: "SendEvents")
            }
            start = end
        }

        let encoder = WireCoding.encoder()
        var failed = 0
        for line in order {
            guard let result = results[line] else { continue }
            if !result.succeeded { failed += 1 }
            if case .event(let response) = result.body {
                for warning in response.warnings { printError("line \(line): warning: \(TerminalText.escaped(warning))") }
            }
            if let data = try? encoder.encode(LineResult(line: line, status: result.status, body: result.body)) {
                print(TerminalText.escapedJSON(String(decoding: data, as: UTF8.self)))
            }
        }
        if failed > 0 {
            printError("\n\(failed) of \(order.count) events were not stored.")
            terminate(CLIExitCode.refused)
        }
    }
}
