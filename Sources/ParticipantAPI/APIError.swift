import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ParticipantInput
import ParticipantOutbox
import ParticipantWire

/// An error at the API's edge: an HTTP status and the JSON body `{"code", "message"}`.
///
/// The code is in the `x-amzn-ErrorType` header too, where AWS SDKs look for it.
public struct APIError: HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var body: ErrorBody
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, code: String, message: String) {
        self.status = status
        self.body = ErrorBody(code: code, message: message)
    }

    /// Bad input, as decoding and validation found it.
    package init(_ error: RequestError) {
        switch error {
        case .unsupportedMediaType(let message):
            self.init(.unsupportedMediaType, code: APIErrorCode.unsupportedMediaType, message: message)
        case .malformed(let message):
            self.init(.badRequest, code: APIErrorCode.malformedRequest, message: message)
        case .invalid(let validation):
            self.init(.badRequest, code: APIErrorCode.validation, message: "\(validation.field) \(validation.rule)")
        }
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let (fields, bytes) = answer
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// The answer's headers (with its content type) and body: the router's response, and what the
    /// hot routes (``HotRouteHandler``) write in the channel pipeline.
    var answer: (headers: HTTPFields, body: [UInt8]) {
        var fields: HTTPFields = [.contentType: "application/json", .amznErrorType: body.code]
        fields.append(contentsOf: headers)
        return (fields, Array((try? DaemonAPI.jsonLine(body)) ?? Data("{}\n".utf8)))
    }
}

extension BatchResult {
    /// A batch element refused as `POST /v1/events` would refuse it alone.
    init(_ error: APIError) {
        self.init(status: Int(error.status.code), body: .error(error.body))
    }
}

extension HTTPField.Name {
    /// Where AWS SDKs read an error's code.
    static let amznErrorType = HTTPField.Name("x-amzn-ErrorType")!
}
