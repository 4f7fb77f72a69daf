import Foundation

/// JSON as every `--json` output writes it: pretty-printed, keys sorted, slashes not escaped.
enum JSONOutput {
    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    static func encode(_ value: some Encodable) throws -> Data {
        try encoder().encode(value)
    }
}

/// Writes one top-level JSON object whose one large array member is written item by item, so `list` and `log`
/// print any number of items in bounded memory. The caller adds members in sorted key order, as the encoder
/// would.
struct JSONDocumentStream {
    private var out = BufferedOutput()
    private let encoder = JSONOutput.encoder()
    private var members = 0
    private var items = 0

    init() {
        out.write("{")
    }

    /// A member with a small value.
    mutating func member(_ key: String, _ value: some Encodable) throws {
        startMember(key)
        out.write(indented: try encoder.encode(value), by: 2)
    }

    /// A member whose value is `null`.
    mutating func nullMember(_ key: String) {
        startMember(key)
        out.write("null")
    }

    /// Opens the array member `key`; add its items with ``item(_:)``, then ``endArray()``.
    mutating func beginArray(_ key: String) {
        startMember(key)
        out.write("[")
        items = 0
    }

    /// One item of the open array.
    mutating func item(_ value: some Encodable) throws {
        out.write(items == 0 ? "\n    " : ",\n    ")
        out.write(indented: try encoder.encode(value), by: 4)
        items += 1
    }

    /// Closes the open array.
    mutating func endArray() {
        out.write(items == 0 ? "]" : "\n  ]")
    }

    /// Closes the object and writes everything.
    mutating func end() {
        out.write("\n}\n")
        out.flush()
    }

    private mutating func startMember(_ key: String) {
        out.write(members == 0 ? "\n  " : ",\n  ")
        out.write("\"\(key)\" : ")
        members += 1
    }
}

extension BufferedOutput {
    /// Writes the encoder's pretty JSON with every line after the first indented by `spaces` (a raw newline in
    /// JSON text is always between tokens: newlines inside strings are escaped).
    mutating func write(indented data: Data, by spaces: Int) {
        data.withUnsafeBytes { raw in
            let bytes = raw.bindMemory(to: UInt8.self)
            var start = 0
            for index in bytes.indices where bytes[index] == UInt8(ascii: "\n") {
                append(UnsafeBufferPointer(rebasing: bytes[start...index]))
                appendSpaces(spaces)
                start = index + 1
            }
            append(UnsafeBufferPointer(rebasing: bytes[start...]))
        }
    }
}
