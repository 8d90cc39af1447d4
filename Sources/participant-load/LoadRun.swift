import Foundation
import Histogram
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// What one run does.
struct LoadPlan: Sendable {
    enum Stop: Sendable {
        case count(Int)
        case after(seconds: Double)
    }

    var socketPath: String
    var clients: Int
    var stop: Stop
    var warmupSeconds: Double
    var mix: RequestMix
    var connections: Int
    /// Events per request: 1 posts to `/v1/events`, more to `/v1/events/batch`.
    var batch: Int = 1
}

/// Content types and their weights, from `read=4,delivered=4,typing=2`.
struct RequestMix: Sendable {
    enum Kind: String, CaseIterable, Sendable {
        case typing, delivered, read, acknowledged

        var contentType: String {
            switch self {
            case .typing: "application/vnd.amazonaws.connect.event.typing"
            case .delivered: "application/vnd.amazonaws.connect.event.message.delivered"
            case .read: "application/vnd.amazonaws.connect.event.message.read"
            case .acknowledged: "application/vnd.amazonaws.connect.event.connection.acknowledged"
            }
        }
    }

    /// Each kind repeated by its weight: the n-th request takes `wheel[n % wheel.count]`.
    let wheel: [Kind]

    init(_ text: String) throws {
        var wheel: [Kind] = []
        for part in text.split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard let kind = Kind(rawValue: pair[0]) else {
                throw LoadError("--mix: unknown content type \"\(pair[0])\"; use \(Kind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let weight = pair.count == 2 ? Int(pair[1]) : 1
            guard let weight, (0...1_000).contains(weight) else {
                throw LoadError("--mix: the weight of \(kind.rawValue) must be a whole number from 0 to 1000")
            }
            wheel += Array(repeating: kind, count: weight)
        }
        guard !wheel.isEmpty else { throw LoadError("--mix: give at least one content type with a weight above 0") }
        self.wheel = wheel
    }
}

struct LoadError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The requests every client takes from: a count, or a deadline, and the warm-up's end.
final class RequestBudget: Sendable {
    private let remaining: Atomic<Int>
    let warmupEnds: UInt64
    let stopsAt: UInt64?

    init(plan: LoadPlan, startedAt: UInt64) {
        warmupEnds = startedAt + UInt64(plan.warmupSeconds * 1e9)
        switch plan.stop {
        case .count(let count):
            // The warm-up's requests come on top of the count; they are not known in advance.
            remaining = Atomic(count)
            stopsAt = nil
        case .after(let seconds):
            remaining = Atomic(Int.max)
            stopsAt = warmupEnds + UInt64(seconds * 1e9)
        }
    }

    /// Whether another request may start at `now`.
    func take(now: UInt64) -> Bool {
        if let stopsAt { return now < stopsAt }
        // Requests before the end of the warm-up do not spend the count.
        if now < warmupEnds { return true }
        return remaining.subtract(1, ordering: .relaxed).newValue >= 0
    }
}

/// One client's figures.
struct ConnectionResult: Sendable {
    var latencies = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
    var statuses: [UInt: Int] = [:]
    var firstMeasured: UInt64 = .max
    var lastMeasured: UInt64 = 0
    /// Events of measured batches that were not stored (a batch answers 200 whatever each event's fate).
    var refusedEvents = 0
    var error: String?
}

/// One keep-alive connection in a closed loop: the next request goes out when the previous
/// answer's end arrives. Runs on its channel's event loop only.
final class LoadConnection: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let client: Int
    private let plan: LoadPlan
    private let runID: String
    private let budget: RequestBudget
    private let done: EventLoopPromise<ConnectionResult>
    private var result = ConnectionResult()
    private var sent = 0
    private var sentAt: UInt64 = 0
    private var status: UInt = 0
    /// A batch's answer, read to count its events' results.
    private var answer = ByteBuffer()
    private var generator: SystemRandomNumberGenerator = .init()

    init(client: Int, plan: LoadPlan, runID: String, budget: RequestBudget, done: EventLoopPromise<ConnectionResult>) {
        self.client = client
        self.plan = plan
        self.runID = runID
        self.budget = budget
        self.done = done
    }

    func channelActive(context: ChannelHandlerContext) {
        sendNext(context: context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = head.status.code
            answer.clear()
        case .body(var part):
            if plan.batch > 1 { answer.writeBuffer(&part) }
        case .end:
            let now = NIODeadline.now().uptimeNanoseconds
            if sentAt >= budget.warmupEnds {
                _ = result.latencies.record(max(1, (now - sentAt) / 1_000))
                result.statuses[status, default: 0] += 1
                if plan.batch > 1, status == 200 {
                    result.refusedEvents += plan.batch - Self.storedResults(in: answer)
                }
                result.firstMeasured = min(result.firstMeasured, sentAt)
                result.lastMeasured = max(result.lastMeasured, now)
            }
            sendNext(context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        done.succeed(result)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        result.error = "\(error)"
        context.close(promise: nil)
    }

    /// Results of a batch's answer that say stored (202) or already stored (200).
    static func storedResults(in answer: ByteBuffer) -> Int {
        let text = String(buffer: answer)
        return text.components(separatedBy: #""status":202"#).count - 1 + text.components(separatedBy: #""status":200"#).count - 1
    }

    /// The next event's JSON object, as `POST /v1/events` takes it.
    private func nextEvent() -> String {
        sent += 1
        let kind = plan.mix.wheel[(client &+ sent) % plan.mix.wheel.count]
        let connection = Int.random(in: 0..<plan.connections, using: &generator)
        let clientToken = "load-\(runID)-\(client)-\(sent)"
        let content: String = switch kind {
        case .delivered, .read: #","content":"{\"messageId\":\"m-\#(client)-\#(sent)\"}""#
        case .typing, .acknowledged: ""
        }
        return #"{"contentType":"\#(kind.contentType)","clientToken":"\#(clientToken)","connectionToken":"load-connection-\#(connection)"\#(content)}"#
    }

    private func sendNext(context: ChannelHandlerContext) {
        let now = NIODeadline.now().uptimeNanoseconds
        guard budget.take(now: now) else {
            context.close(promise: nil)
            return
        }
        let body: String
        let uri: String
        if plan.batch == 1 {
            body = nextEvent()
            uri = "/v1/events"
        } else {
            body = #"{"events":["# + (0..<plan.batch).map { _ in nextEvent() }.joined(separator: ",") + "]}"
            uri = "/v1/events/batch"
        }
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: "localhost")
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: uri, headers: headers)
        sentAt = now
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}

/// Runs a plan: opens every client, waits for all to finish, and merges their figures.
struct LoadRun {
    let plan: LoadPlan
    let group: MultiThreadedEventLoopGroup

    func run() async throws -> LoadResult {
        let startedAt = NIODeadline.now().uptimeNanoseconds
        let budget = RequestBudget(plan: plan, startedAt: startedAt)
        let runID = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        var futures: [EventLoopFuture<ConnectionResult>] = []
        var failedConnections = 0
        var connectError: String?
        for client in 0..<plan.clients {
            let loop = group.next()
            let done = loop.makePromise(of: ConnectionResult.self)
            let plan = plan
            let bootstrap = ClientBootstrap(group: loop).channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(
                        LoadConnection(client: client, plan: plan, runID: runID, budget: budget, done: done)
                    )
                }
            }
            do {
                _ = try await bootstrap.connect(unixDomainSocketPath: plan.socketPath).get()
                futures.append(done.futureResult)
            } catch {
                failedConnections += 1
                connectError = "\(error)"
                done.fail(error)
            }
        }
        var merged = ConnectionResult()
        var errors: [String] = connectError.map { ["connect: \($0)"] } ?? []
        for future in futures {
            let result = try await future.get()
            merged.latencies.add(result.latencies)
            merged.statuses.merge(result.statuses, uniquingKeysWith: +)
            merged.firstMeasured = min(merged.firstMeasured, result.firstMeasured)
            merged.lastMeasured = max(merged.lastMeasured, result.lastMeasured)
            merged.refusedEvents += result.refusedEvents
            if let error = result.error { errors.append(error) }
        }
        return LoadResult(plan: plan, merged: merged, failedConnections: failedConnections, errors: errors)
    }
}

/// A run's figures: rate and latency percentiles in microseconds.
struct LoadResult {
    let clients: Int
    let requests: Int
    /// Events per request.
    let batch: Int
    /// Events of batches answered 200 that were not stored.
    let refusedEvents: Int
    let seconds: Double
    let statuses: [UInt: Int]
    let failedConnections: Int
    let errors: [String]
    let percentiles: [(String, UInt64)]

    init(plan: LoadPlan, merged: ConnectionResult, failedConnections: Int, errors: [String]) {
        clients = plan.clients
        requests = Int(merged.latencies.totalCount)
        batch = plan.batch
        refusedEvents = merged.refusedEvents
        seconds = merged.lastMeasured > merged.firstMeasured ? Double(merged.lastMeasured - merged.firstMeasured) / 1e9 : 0
        statuses = merged.statuses
        self.failedConnections = failedConnections
        self.errors = errors
        let histogram = merged.latencies
        percentiles = requests == 0 ? [] : [
            ("p50", histogram.valueAtPercentile(50)), ("p90", histogram.valueAtPercentile(90)),
            ("p99", histogram.valueAtPercentile(99)), ("p99.9", histogram.valueAtPercentile(99.9)),
            ("max", histogram.max),
        ]
    }

    var rate: Double { seconds > 0 ? Double(requests) / seconds : 0 }
    var eventRate: Double { rate * Double(batch) }

    func text() -> String {
        var lines = [
            String(format: "%d requests in %.2f s from %d clients: %.0f requests/s", requests, seconds, clients, rate)
                + (batch > 1 ? String(format: " of %d events: %.0f events/s", batch, eventRate) : ""),
            "latency (µs): " + percentiles.map { "\($0.0) \($0.1)" }.joined(separator: ", "),
            "answers: " + statuses.sorted { $0.key < $1.key }.map { "\($0.key) × \($0.value)" }.joined(separator: ", "),
        ]
        if refusedEvents > 0 { lines.append("events refused inside batches: \(refusedEvents)") }
        if failedConnections > 0 { lines.append("connections refused: \(failedConnections)") }
        for error in Set(errors).sorted() { lines.append("error: \(error)") }
        return lines.joined(separator: "\n")
    }

    func jsonLine() -> String {
        var object: [String: Any] = [
            "clients": clients, "requests": requests, "seconds": seconds, "rate": rate,
            "batch": batch, "eventRate": eventRate, "refusedEvents": refusedEvents,
            "statuses": Dictionary(uniqueKeysWithValues: statuses.map { (String($0.key), $0.value) }),
            "failedConnections": failedConnections, "errors": Array(Set(errors)).sorted(),
        ]
        for (name, value) in percentiles { object["\(name)Micros"] = value }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
