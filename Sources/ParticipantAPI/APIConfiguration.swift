import Foundation
import ParticipantInput
import ParticipantOutbox
import ParticipantWire

/// The API's limits and the SendEvent route's wait (keys `api.*` and `aws.waitForDeliverySeconds`).
public struct APIConfiguration: Sendable, Equatable {
    /// The largest request body read; larger gets 413.
    public var maxBodyBytes = 262_144
    /// Events in one `POST /v1/events/batch` at most; more gets 400.
    public var maxBatchEvents = 500
    /// The largest batch body read (500 typing events or receipts fit several times over); larger gets 413.
    public var maxBatchBytes = 2_097_152
    /// Request bodies held at once across every connection, in MiB (``BodyBudget``): beyond,
    /// requests wait their turn before their bodies are read.
    public var maxBodyMemoryMegabytes = 64
    /// Header bytes of one request at most (and of one header field); more gets 431.
    public var maxHeaderBytes = 16_384
    /// Header fields of one request at most; more gets 431.
    public var maxHeaderCount = 64
    /// Connections open at once on each listener; one more is closed as soon as it is accepted.
    public var maxConnections = 256
    /// Connections open at once on each listener from one peer (a Linux user); one more is
    /// closed as soon as it is accepted (`access.peerMaxConnections`).
    public var peerMaxConnections = 64
    /// Whether a TCP client off loopback is let in unnamed (`aws.allowNonLoopback` with no allow
    /// list); otherwise a peer that cannot be named is refused.
    public var allowsAnonymousRemotePeers = false
    /// From a request's first byte to its last; a slower client gets 408 and is disconnected.
    public var requestTimeout: Duration = .seconds(10)
    /// A keep-alive connection with no request for this long is closed.
    public var idleTimeout: Duration = .seconds(60)
    /// How long `POST /participant/event` waits for the service's answer before it answers with
    /// the outbox's record (0: answer as soon as the event is stored).
    public var deliveryWait: Duration = .seconds(2)
    /// The Connect instances events may name (`instances.*`, and `default`); another name is refused.
    public var instanceNames: [String] = [InstanceName.defaultName]

    public init() {}

    /// Refuses an instance that is not configured, listing those that are.
    /// - Parameter field: the field as the client named it.
    public func checkInstance(_ instance: String, field: String = "instance") throws(ValidationError) {
        guard !instanceNames.contains(instance) else { return }
        throw ValidationError(
            field: field,
            rule: "names no configured instance (\"\(instance.prefix(100))\"); the instances are \(instanceNames.joined(separator: ", "))"
        )
    }
}

/// A TCP address to listen on, `HOST:PORT` (`[::1]:PORT` for IPv6).
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    /// 0: any free port (the log line "participantd ready" says which).
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT`; `nil` when it is not of that form.
    public init?(_ text: String) {
        let host: Substring
        let port: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            port = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
            if host.contains(":") { return nil }  // IPv6 needs brackets
        }
        guard !host.isEmpty, let number = Int(port), (0...65_535).contains(number) else { return nil }
        self.init(host: String(host), port: number)
    }

    /// 127.0.0.0/8, ::1 or localhost: reachable from this machine only.
    public var isLoopback: Bool {
        if host == "localhost" || host == "::1" { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
