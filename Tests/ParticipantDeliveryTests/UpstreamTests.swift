import Foundation
import NIOHTTP1
@testable import ParticipantDelivery
@testable import ParticipantOutbox
import ParticipantWire
import Testing

@Suite struct UpstreamTests {
    func classify(_ status: Int, headers: [(String, String)] = [], body: String = "") -> ServiceCallResult {
        HTTPParticipantService.classify(status: status, headers: HTTPHeaders(headers), body: Data(body.utf8))
    }

    @Test func successCarriesIdAndAbsoluteTime() {
        #expect(classify(200, body: #"{"Id":"i-1","AbsoluteTime":"2019-11-08T02:41:28.172Z"}"#)
            == .accepted(id: "i-1", absoluteTime: "2019-11-08T02:41:28.172Z"))
        guard case .transient(let error, 200) = classify(200, body: "{}") else { Issue.record("expected transient"); return }
        #expect(error.code == "InvalidResponse")
    }

    @Test func errorsAreSortedAsTheSDKsSortThem() {
        let header = { (code: String) in [("x-amzn-ErrorType", "\(code):http://internal.amazon.com/coral/com.amazonaws.connectparticipant/")] }
        #expect(classify(400, headers: header("ValidationException"), body: #"{"message":"bad"}"#)
            == .rejected(ErrorBody(code: "ValidationException", message: "bad"), status: 400))
        #expect(classify(403, headers: header("AccessDeniedException"), body: #"{"Message":"gone"}"#)
            == .rejected(ErrorBody(code: "AccessDeniedException", message: "gone"), status: 403))
        #expect(classify(409, body: #"{"__type":"com.amazonaws#ConflictException","message":"no"}"#)
            == .rejected(ErrorBody(code: "ConflictException", message: "no"), status: 409))
        for status in [429, 500, 502, 503, 504] {
            guard case .transient = classify(status) else { Issue.record("\(status) should be retried"); continue }
        }
        #expect(classify(429, body: "not json") == .transient(ErrorBody(code: "ThrottlingException", message: "the service answered HTTP 429 without a message"), status: 429))
        guard case .rejected(let error, 404) = classify(404) else { Issue.record("404 is final"); return }
        #expect(error.code == "HTTP404")
    }

    @Test func bodyHasTheServiceMemberNames() throws {
        let body = HTTPParticipantService.encodeBody(ServiceRequest(operation: .sendEvent, contentType: "t", content: nil, clientToken: "c", connectionToken: "secret"))
        #expect(String(decoding: body, as: UTF8.self) == #"{"ClientToken":"c","ContentType":"t"}"#)
        let withContent = HTTPParticipantService.encodeBody(ServiceRequest(operation: .sendEvent, contentType: "t", content: "x/y", clientToken: "c", connectionToken: "secret"))
        #expect(String(decoding: withContent, as: UTF8.self) == #"{"ClientToken":"c","Content":"x/y","ContentType":"t"}"#)
    }

    @Test func endpointsFollowTheRuleSet() throws {
        #expect(try ServiceEndpoint.resolve(region: "eu-west-2", endpoint: nil, fips: false, dualStack: false) == "https://participant.connect.eu-west-2.amazonaws.com")
        #expect(try ServiceEndpoint.resolve(region: "us-east-1", endpoint: nil, fips: true, dualStack: false) == "https://participant.connect-fips.us-east-1.amazonaws.com")
        #expect(try ServiceEndpoint.resolve(region: "us-west-2", endpoint: nil, fips: false, dualStack: true) == "https://participant.connect.us-west-2.api.aws")
        #expect(try ServiceEndpoint.resolve(region: "us-west-2", endpoint: nil, fips: true, dualStack: true) == "https://participant.connect-fips.us-west-2.api.aws")
        #expect(try ServiceEndpoint.resolve(region: "us-gov-west-1", endpoint: nil, fips: true, dualStack: false) == "https://participant.connect.us-gov-west-1.amazonaws.com")
        #expect(try ServiceEndpoint.resolve(region: "x", endpoint: "http://127.0.0.1:8787/", fips: false, dualStack: false) == "http://127.0.0.1:8787")
        #expect(throws: ServiceEndpoint.Error.self) { try ServiceEndpoint.resolve(region: "us-east-1", endpoint: "http://h", fips: true, dualStack: false) }
        #expect(throws: ServiceEndpoint.Error.self) { try ServiceEndpoint.resolve(region: "US East", endpoint: nil, fips: false, dualStack: false) }
        #expect(throws: ServiceEndpoint.Error.self) { try ServiceEndpoint.resolve(region: "us-east-1", endpoint: "ftp://h", fips: false, dualStack: false) }
    }
}
