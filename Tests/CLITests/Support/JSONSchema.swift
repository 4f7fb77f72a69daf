import Foundation
@testable import ReaderSync

/// Parses JSON text into ``JSONValue`` (the import tokenizer's value type), which keeps booleans, numbers and
/// null apart (Foundation's JSONSerialization turns booleans into numbers on Linux).
func parseJSONValue(_ data: Data) throws -> JSONValue {
    let stream = JSONByteStream(data: data)
    var parser = JSONStreamParser(stream: stream, acrossLines: true)
    let value = try parser.parseValue()
    if let extra = try stream.skipWhitespace(acrossLines: true) {
        throw JSONSyntaxError(detail: "unexpected \(JSONStreamParser.describe(extra)) after the value", line: stream.line,
                              column: stream.column)
    }
    return value
}

/// Validates JSON against the schemas of `Schemas/cli-json/`: a JSON Schema (draft 2020-12) validator for
/// exactly the keywords those files use. ``unsupportedKeywords()`` lists any other keyword a schema uses, so a
/// constraint can never be skipped silently.
struct JSONSchemaValidator {
    static let supportedKeywords: Set<String> = [
        "$schema", "$id", "$defs", "$ref", "title", "description", "type", "properties", "required",
        "additionalProperties", "items", "const", "enum", "pattern", "minimum", "maximum", "anyOf", "allOf",
    ]

    /// The schema files, by file name.
    let documents: [String: JSONValue]

    /// Loads every `*.schema.json` in `directory`.
    init(directory: URL) throws {
        var documents: [String: JSONValue] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: directory.path) where name.hasSuffix(".schema.json") {
            documents[name] = try parseJSONValue(Data(contentsOf: directory.appendingPathComponent(name)))
        }
        self.documents = documents
    }

    /// Problems with `instance` against the schema file `name`, each with the JSON path (`$.items[0].article.url`).
    func validate(_ instance: JSONValue, against name: String) -> [String] {
        guard let schema = documents[name] else { return ["no schema file \(name)"] }
        var errors: [String] = []
        validate(instance, schema, file: name, path: "$", errors: &errors)
        return errors
    }

    /// Keywords used in the schema files that this validator does not implement (keys under `properties` and
    /// `$defs` are names, not keywords).
    func unsupportedKeywords() -> [String] {
        var found: Set<String> = []
        func walk(_ value: JSONValue, namesOnly: Bool) {
            switch value {
            case .object(let object):
                for (key, member) in object {
                    if !namesOnly && !Self.supportedKeywords.contains(key) { found.insert(key) }
                    walk(member, namesOnly: !namesOnly && (key == "properties" || key == "$defs"))
                }
            case .array(let items):
                for item in items { walk(item, namesOnly: false) }
            default:
                break
            }
        }
        for document in documents.values { walk(document, namesOnly: false) }
        return found.sorted()
    }

    // MARK: - Validation

    private func validate(_ value: JSONValue, _ schema: JSONValue, file: String, path: String, errors: inout [String]) {
        guard case .object(let s) = schema else {
            if schema == .bool(false) { errors.append("\(path): not allowed") }
            return
        }
        if case .string(let ref)? = s["$ref"] {
            guard let (target, targetFile) = resolve(ref, from: file) else {
                errors.append("\(path): cannot resolve $ref \(ref)")
                return
            }
            validate(value, target, file: targetFile, path: path, errors: &errors)
        }
        if let type = s["type"] {
            let names: [String]
            switch type {
            case .string(let name): names = [name]
            case .array(let list): names = list.compactMap { if case .string(let n) = $0 { return n } else { return nil } }
            default: names = []
            }
            if !names.contains(where: { Self.matches(value, type: $0) }) {
                errors.append("\(path): expected \(names.joined(separator: " or ")), found \(Self.describe(value))")
                return
            }
        }
        if let constant = s["const"], !Self.equal(constant, value) {
            errors.append("\(path): expected \(Self.describe(constant)), found \(Self.describe(value))")
        }
        if case .array(let options)? = s["enum"], !options.contains(where: { Self.equal($0, value) }) {
            errors.append("\(path): \(Self.describe(value)) is not one of \(options.map(Self.describe).joined(separator: ", "))")
        }
        if case .string(let pattern)? = s["pattern"], case .string(let text) = value {
            if text.range(of: pattern, options: .regularExpression) == nil {
                errors.append("\(path): '\(text.prefix(80))' does not match \(pattern)")
            }
        }
        if case .number(let text) = value, let number = Double(text) {
            if case .number(let min)? = s["minimum"], let bound = Double(min), number < bound {
                errors.append("\(path): \(text) is below \(min)")
            }
            if case .number(let max)? = s["maximum"], let bound = Double(max), number > bound {
                errors.append("\(path): \(text) is above \(max)")
            }
        }
        if case .object(let object) = value {
            let properties: [String: JSONValue]
            if case .object(let p)? = s["properties"] { properties = p } else { properties = [:] }
            for (key, member) in object.sorted(by: { $0.key < $1.key }) {
                if let sub = properties[key] {
                    validate(member, sub, file: file, path: "\(path).\(key)", errors: &errors)
                } else if s["additionalProperties"] == .bool(false) {
                    errors.append("\(path): unexpected key '\(key)'")
                }
            }
            if case .array(let required)? = s["required"] {
                for case .string(let key) in required where object[key] == nil {
                    errors.append("\(path): missing key '\(key)'")
                }
            }
        }
        if case .array(let items) = value, let itemSchema = s["items"] {
            for (index, item) in items.enumerated() {
                validate(item, itemSchema, file: file, path: "\(path)[\(index)]", errors: &errors)
            }
        }
        if case .array(let all)? = s["allOf"] {
            for sub in all { validate(value, sub, file: file, path: path, errors: &errors) }
        }
        if case .array(let any)? = s["anyOf"] {
            var collected: [String] = []
            let passes = any.contains { sub in
                var suberrors: [String] = []
                validate(value, sub, file: file, path: path, errors: &suberrors)
                collected += suberrors
                return suberrors.isEmpty
            }
            if !passes { errors.append("\(path): matches none of anyOf (\(collected.joined(separator: "; ")))") }
        }
    }

    /// `file#/$defs/x` or `#/$defs/x`.
    private func resolve(_ ref: String, from file: String) -> (JSONValue, String)? {
        let parts = ref.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)
        let targetFile = parts[0].isEmpty ? file : String(parts[0])
        guard var node = documents[targetFile] else { return nil }
        let pointer = parts.count > 1 ? parts[1] : ""
        for component in pointer.split(separator: "/") {
            guard case .object(let object) = node, let next = object[String(component)] else { return nil }
            node = next
        }
        return (node, targetFile)
    }

    private static func matches(_ value: JSONValue, type: String) -> Bool {
        switch (type, value) {
        case ("null", .null), ("boolean", .bool), ("string", .string), ("array", .array), ("object", .object),
             ("number", .number):
            return true
        case ("integer", .number(let text)):
            return !text.contains(".") && !text.contains("e") && !text.contains("E")
        default:
            return false
        }
    }

    private static func equal(_ a: JSONValue, _ b: JSONValue) -> Bool {
        if case .number(let x) = a, case .number(let y) = b { return Double(x) == Double(y) }
        return a == b
    }

    private static func describe(_ value: JSONValue) -> String {
        switch value {
        case .null: return "null"
        case .bool(let b): return String(b)
        case .number(let n): return n
        case .string(let s): return "\"\(s.prefix(60))\""
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}
