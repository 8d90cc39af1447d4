#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Any JSON value, as the AWS CLI's input parsing sees one (`--cli-input-json`, a batch's lines):
/// decoded with `JSONDecoder`, so participantctl needs no `JSONSerialization` (which is not in
/// FoundationEssentials and would link all of Foundation, its ICU data included: 40 MB).
public enum JSONValue: Decodable, Sendable, Equatable, CustomStringConvertible {
    case string(String)
    case number(Double)
    case bool(Bool)
    case null
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    /// The JSON object `data` holds, or nil when it holds anything else or no JSON.
    public static func object(in data: Data) -> [String: JSONValue]? {
        guard case .object(let members)? = try? JSONDecoder().decode(JSONValue.self, from: data) else { return nil }
        return members
    }

    /// The type's name as the AWS CLI (Python) gives it in "Invalid type for parameter" errors.
    public var pythonType: String {
        switch self {
        case .string: "<class 'str'>"
        case .number(let value): value.rounded() == value && abs(value) < 1e15 ? "<class 'int'>" : "<class 'float'>"
        case .bool: "<class 'bool'>"
        case .null: "<class 'NoneType'>"
        case .array: "<class 'list'>"
        case .object: "<class 'dict'>"
        }
    }

    public var description: String {
        switch self {
        case .string(let value): value
        case .number(let value): value.rounded() == value && abs(value) < 1e15 ? String(Int64(value)) : String(value)
        case .bool(let value): value ? "True" : "False"
        case .null: "None"
        case .array(let values): "[" + values.map(\.description).joined(separator: ", ") + "]"
        case .object(let members): "{" + members.sorted { $0.key < $1.key }.map { "'\($0.key)': \($0.value)" }.joined(separator: ", ") + "}"
        }
    }
}
