import Foundation
@testable import ParticipantDelivery
@testable import ParticipantOutbox
import ParticipantWire
import Testing

/// The sender's per-attempt decision and the meaning of each service answer, over tables of cases.
@Suite struct AttemptDecisionTests {
    static let now = Date(timeIntervalSince1970: 1_700_000_000)
    static let policy = RetryPolicy(baseDelay: .seconds(1), maxDelay: .seconds(20))
    static func error(_ code: String) -> ErrorBody { ErrorBody(code: code, message: "m") }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var result: ServiceCallResult
        var contentType: ItemContentType = .event(.messageRead)
        var attempts = 1
        var deadlineAfter: TimeInterval = 86_400
        var random = 0.5
        var transition: DeliveryTransition
        var meaning: ServiceAnswer.Meaning
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "200 is sent", result: .accepted(id: "i", absoluteTime: "t"),
             transition: .sent(id: "i", absoluteTime: "t"), meaning: .sent(id: "i", absoluteTime: "t")),
        Case(name: "500 after the first attempt: retry within 1 s", result: .transient(error("InternalServerException"), status: 500),
             transition: .retry(at: now.addingTimeInterval(0.5), error: error("InternalServerException")),
             meaning: .retry(error("InternalServerException"), throttled: false)),
        Case(name: "503 after the fourth attempt: ceiling 8 s", result: .transient(error("ServiceUnavailable"), status: 503), attempts: 4, random: 0.25,
             transition: .retry(at: now.addingTimeInterval(2), error: error("ServiceUnavailable")),
             meaning: .retry(error("ServiceUnavailable"), throttled: false)),
        Case(name: "the ceiling stops at maxDelay", result: .transient(error("Timeout"), status: nil), attempts: 30, random: 0.5,
             transition: .retry(at: now.addingTimeInterval(10), error: error("Timeout")),
             meaning: .retry(error("Timeout"), throttled: false)),
        Case(name: "429 is retried and throttles", result: .transient(error("ThrottlingException"), status: 429), random: 0,
             transition: .retry(at: now, error: error("ThrottlingException")),
             meaning: .retry(error("ThrottlingException"), throttled: true)),
        Case(name: "a 200 without Id counts as no answer", result: .transient(error("InvalidResponse"), status: 200),
             transition: .retry(at: now.addingTimeInterval(0.5), error: error("InvalidResponse")),
             meaning: .retry(error("InvalidResponse"), throttled: false)),
        Case(name: "a retry at the deadline expires the event", result: .transient(error("ConnectionError"), status: nil), deadlineAfter: 0.5,
             transition: .expired(ErrorBody(code: "DeadlineExceeded", message: "the deadline passed before the service accepted the event; last error: ConnectionError: m")),
             meaning: .retry(error("ConnectionError"), throttled: false)),
        Case(name: "a retry just before the deadline is still a retry", result: .transient(error("ConnectionError"), status: nil), deadlineAfter: 0.501,
             transition: .retry(at: now.addingTimeInterval(0.5), error: error("ConnectionError")),
             meaning: .retry(error("ConnectionError"), throttled: false)),
        Case(name: "400 fails this event alone", result: .rejected(error("ValidationException"), status: 400),
             transition: .failed(error("ValidationException"), block: nil), meaning: .fail(error("ValidationException"), status: 400, block: nil)),
        Case(name: "403 fails the whole connection", result: .rejected(error("AccessDeniedException"), status: 403), contentType: .event(.typing),
             transition: .failed(error("AccessDeniedException"), block: .all), meaning: .fail(error("AccessDeniedException"), status: 403, block: .all)),
        Case(name: "409 on a receipt fails the connection's receipts", result: .rejected(error("ConflictException"), status: 409),
             transition: .failed(error("ConflictException"), block: .receipts), meaning: .fail(error("ConflictException"), status: 409, block: .receipts)),
        Case(name: "409 on a typing event fails it alone", result: .rejected(error("ConflictException"), status: 409), contentType: .event(.typing),
             transition: .failed(error("ConflictException"), block: nil), meaning: .fail(error("ConflictException"), status: 409, block: nil)),
        Case(name: "409 on a message fails it alone: only a receipt's 409 blocks the connection's receipts", result: .rejected(error("ConflictException"), status: 409),
             contentType: .message(.plainText),
             transition: .failed(error("ConflictException"), block: nil), meaning: .fail(error("ConflictException"), status: 409, block: nil)),
        Case(name: "403 on a message fails the whole connection, as on an event", result: .rejected(error("AccessDeniedException"), status: 403),
             contentType: .message(.markdown),
             transition: .failed(error("AccessDeniedException"), block: .all), meaning: .fail(error("AccessDeniedException"), status: 403, block: .all)),
        Case(name: "404 fails this event alone", result: .rejected(error("HTTP404"), status: 404),
             transition: .failed(error("HTTP404"), block: nil), meaning: .fail(error("HTTP404"), status: 404, block: nil)),
    ]

    @Test("Each attempt result becomes the right transition and meaning", arguments: cases)
    func decides(_ testCase: Case) {
        let decision = AttemptDecision.decide(
            attempts: testCase.attempts, deadline: Self.now.addingTimeInterval(testCase.deadlineAfter),
            contentType: testCase.contentType, result: testCase.result, now: Self.now, random: testCase.random, retry: Self.policy
        )
        #expect(decision.transition == testCase.transition)
        #expect(decision.meaning == testCase.meaning)
    }

    @Test("Only a retry that is not a 429 leaves the service unanswered (an outage counts it)")
    func serviceAnswered() {
        #expect(ServiceAnswer.Meaning.sent(id: "i", absoluteTime: "t").serviceAnswered)
        #expect(ServiceAnswer.Meaning.retry(Self.error("T"), throttled: true).serviceAnswered)
        #expect(!ServiceAnswer.Meaning.retry(Self.error("T"), throttled: false).serviceAnswered)
        #expect(ServiceAnswer.Meaning.fail(Self.error("V"), status: 400, block: nil).serviceAnswered)
    }

    @Test("Statuses, fallback codes and the SDK route's status for a code come from one table")
    func answerTable() {
        for status in [429, 500, 502, 503, 504, 599] { #expect(ServiceAnswer.isRetryable(status: status), "\(status)") }
        for status in [400, 401, 403, 404, 409, 413, 499] { #expect(!ServiceAnswer.isRetryable(status: status), "\(status)") }
        #expect(ServiceErrorCode.code(forStatus: 403) == "AccessDeniedException")
        #expect(ServiceErrorCode.code(forStatus: 418) == "HTTP418")
        #expect(ServiceErrorCode.status(forCode: "SomethingElse") == 400)
        for code in ["AccessDeniedException", "ConflictException", "ThrottlingException", "InternalServerException", "ValidationException"] {
            #expect(ServiceErrorCode.code(forStatus: ServiceErrorCode.status(forCode: code)) == code)
        }
    }
}
