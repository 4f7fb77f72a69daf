import Foundation

/// The canonical JSON text of change values (`content` of an article, `created` of a comment), written and read
/// byte for byte as `Schemas/merge-rules.md` ("Canonical JSON") defines it, so every client writes the same bytes
/// and a relay passes them on unchanged:
///
/// - one object, keys in ascending byte order, no white space, a key with no value (null) omitted;
/// - strings: UTF-8; `"` and `\` escaped as `\"` and `\\`; U+0008, U+0009, U+000A, U+000C, U+000D as `\b`, `\t`,
///   `\n`, `\f`, `\r`; the other characters below U+0020 as `\u00XX` with lowercase hex digits; everything else,
///   `/` and U+007F included, as itself;
/// - integers in decimal, `-` for negatives, no leading zeros, no fraction or exponent;
/// - arrays of strings: `[`, the strings separated by `,`, `]`.
///
/// The parser accepts exactly that form and nothing else.
enum CanonicalText {
    // MARK: Writing

    struct Writer {
        private(set) var bytes: [UInt8] = []
        private var first = true

        init(capacity: Int = 256) {
            bytes.reserveCapacity(capacity)
            bytes.append(0x7B)  // {
        }

        private mutating func key(_ name: StaticString) {
            if !first { bytes.append(0x2C) }
            first = false
            bytes.append(0x22)
            name.withUTF8Buffer { bytes.append(contentsOf: $0) }
            bytes.append(0x22)
            bytes.append(0x3A)
        }

        mutating func string(_ name: StaticString, _ value: String?) {
            guard let value else { return }
            key(name)
            Self.append(string: value, to: &bytes)
        }

        mutating func int(_ name: StaticString, _ value: Int64?) {
            guard let value else { return }
            key(name)
            bytes.append(contentsOf: String(value).utf8)
        }

        mutating func strings(_ name: StaticString, _ values: [String]) {
            key(name)
            bytes.append(0x5B)
            for (i, value) in values.enumerated() {
                if i > 0 { bytes.append(0x2C) }
                Self.append(string: value, to: &bytes)
            }
            bytes.append(0x5D)
        }

        mutating func finish() -> [UInt8] {
            bytes.append(0x7D)
            return bytes
        }

        static func append(string: String, to bytes: inout [UInt8]) {
            bytes.append(0x22)
            for byte in string.utf8 {
                switch byte {
                case 0x22: bytes.append(0x5C); bytes.append(0x22)
                case 0x5C: bytes.append(0x5C); bytes.append(0x5C)
                case 0x08: bytes.append(0x5C); bytes.append(0x62)
                case 0x09: bytes.append(0x5C); bytes.append(0x74)
                case 0x0A: bytes.append(0x5C); bytes.append(0x6E)
                case 0x0C: bytes.append(0x5C); bytes.append(0x66)
                case 0x0D: bytes.append(0x5C); bytes.append(0x72)
                case 0..<0x20:
                    let hex: [UInt8] = Array("0123456789abcdef".utf8)
                    bytes.append(contentsOf: [0x5C, 0x75, 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
                default: bytes.append(byte)
                }
            }
            bytes.append(0x22)
        }

        /// The size `string` takes once written as a JSON string (quotes included).
        static func encodedLength(of string: String) -> Int {
            var n = 2
            for byte in string.utf8 {
                switch byte {
                case 0x22, 0x5C, 0x08, 0x09, 0x0A, 0x0C, 0x0D: n += 2
                case 0..<0x20: n += 6
                default: n += 1
                }
            }
            return n
        }
    }

    // MARK: Reading

    /// Why a text is not canonical: the byte offset and what was expected.
    struct ParseError: Error {
        var offset: Int
        var message: String
    }

    /// A strict reader of one canonical object.
    struct Parser {
        private let bytes: [UInt8]
        private var position = 0
        private var first = true

        init(_ text: String) { bytes = Array(text.utf8) }

        private func fail(_ message: String) -> ParseError { ParseError(offset: position, message: message) }

        private mutating func expect(_ byte: UInt8, _ what: String) throws {
            guard position < bytes.count, bytes[position] == byte else { throw fail("expected \(what)") }
            position += 1
        }

        mutating func begin() throws { try expect(0x7B, "'{'") }

        mutating func end() throws {
            try expect(0x7D, "'}' or the next key in order")
            guard position == bytes.count else { throw fail("unexpected text after the object") }
        }

        /// Reads the key `name` if it is next (and says whether it was).
        mutating func key(_ name: StaticString) throws -> Bool {
            let saved = position
            if !first {
                guard position < bytes.count, bytes[position] == 0x2C else { return false }
                position += 1
            }
            let matched = name.withUTF8Buffer { key -> Bool in
                let needed = key.count + 3
                guard position + needed <= bytes.count, bytes[position] == 0x22,
                      bytes[position + 1 + key.count] == 0x22, bytes[position + 2 + key.count] == 0x3A else { return false }
                for i in 0..<key.count where bytes[position + 1 + i] != key[i] { return false }
                position += needed
                return true
            }
            if !matched { position = saved; return false }
            first = false
            return true
        }

        mutating func requireKey(_ name: StaticString) throws {
            guard try key(name) else { throw fail("expected the key \"\(name)\"") }
        }

        mutating func string() throws -> String {
            try expect(0x22, "a string")
            var out: [UInt8] = []
            while true {
                guard position < bytes.count else { throw fail("unterminated string") }
                let byte = bytes[position]
                position += 1
                switch byte {
                case 0x22:
                    // The bytes came from a String, so they are valid UTF-8.
                    return String(decoding: out, as: UTF8.self)
                case 0x5C:
                    guard position < bytes.count else { throw fail("unterminated escape") }
                    let e = bytes[position]
                    position += 1
                    switch e {
                    case 0x22: out.append(0x22)
                    case 0x5C: out.append(0x5C)
                    case 0x62: out.append(0x08)
                    case 0x74: out.append(0x09)
                    case 0x6E: out.append(0x0A)
                    case 0x66: out.append(0x0C)
                    case 0x72: out.append(0x0D)
                    case 0x75:
                        guard position + 4 <= bytes.count, bytes[position] == 0x30, bytes[position + 1] == 0x30,
                              let hi = Self.hexDigit(bytes[position + 2]), let lo = Self.hexDigit(bytes[position + 3]) else {
                            throw fail("a \\u escape must be \\u00 and two lowercase hex digits")
                        }
                        let value = hi << 4 | lo
                        guard value < 0x20, ![0x08, 0x09, 0x0A, 0x0C, 0x0D].contains(value) else {
                            throw fail("\\u00\(String(value, radix: 16)) must be written \(value < 0x20 ? "with its short escape" : "as itself")")
                        }
                        out.append(value)
                        position += 4
                    default:
                        throw fail("'\\\(Character(Unicode.Scalar(e)))' is not a canonical escape")
                    }
                case 0..<0x20:
                    throw fail("a control character must be escaped")
                default:
                    out.append(byte)
                }
            }
        }

        mutating func int() throws -> Int64 {
            let start = position
            var negative = false
            if position < bytes.count, bytes[position] == 0x2D { negative = true; position += 1 }
            let digitsStart = position
            while position < bytes.count, bytes[position] >= 0x30, bytes[position] <= 0x39 { position += 1 }
            let digits = position - digitsStart
            guard digits > 0 else { throw fail("expected an integer") }
            guard !(digits > 1 && bytes[digitsStart] == 0x30), !(negative && digits == 1 && bytes[digitsStart] == 0x30) else {
                position = start
                throw fail("an integer must not have leading zeros or be -0")
            }
            guard let value = Int64(String(decoding: bytes[start..<position], as: UTF8.self)) else {
                position = start
                throw fail("the integer does not fit 64 bits")
            }
            return value
        }

        mutating func strings() throws -> [String] {
            try expect(0x5B, "'['")
            var out: [String] = []
            if position < bytes.count, bytes[position] == 0x5D { position += 1; return out }
            while true {
                out.append(try string())
                guard position < bytes.count else { throw fail("unterminated array") }
                if bytes[position] == 0x2C { position += 1; continue }
                try expect(0x5D, "',' or ']'")
                return out
            }
        }

        private static func hexDigit(_ b: UInt8) -> UInt8? {
            switch b {
            case 0x30...0x39: return b - 0x30
            case 0x61...0x66: return b - 0x61 + 10
            default: return nil
            }
        }
    }
}

/// A comment's creation record: where it hangs. Its author is the account the id is bound to (or, for an id
/// not bound to an account, the account of the replica that wrote the creation).
struct CommentCreation: Equatable, Sendable {
    var article: String
    var parent: String?

    /// The canonical JSON: `{"article":…,"parent":…}`, `parent` omitted for a top-level comment.
    func encoded() -> String {
        var w = CanonicalText.Writer(capacity: 64)
        w.string("article", article)
        w.string("parent", parent)
        return String(decoding: w.finish(), as: UTF8.self)
    }

    /// Parses and checks a canonical creation record of comment `commentID`.
    /// - Throws: a message naming what is wrong.
    static func decode(_ text: String, commentID: String) throws(ValueProblem) -> CommentCreation {
        var p = CanonicalText.Parser(text)
        let record: CommentCreation
        do {
            try p.begin()
            try p.requireKey("article")
            let article = try p.string()
            let parent = try p.key("parent") ? try p.string() : nil
            try p.end()
            record = CommentCreation(article: article, parent: parent)
        } catch let error as CanonicalText.ParseError {
            throw ValueProblem("is not the canonical JSON of a comment creation (at byte \(error.offset): \(error.message))")
        } catch {
            throw ValueProblem("is not the canonical JSON of a comment creation")
        }
        if let problem = Keys.problem(withID: record.article) { throw ValueProblem("names an article id that \(problem)") }
        if let parent = record.parent {
            if let problem = Keys.problem(withID: parent) { throw ValueProblem("names a parent id that \(problem)") }
            if parent.utf8.elementsEqual(commentID.utf8) { throw ValueProblem("names the comment as its own parent") }
        }
        return record
    }
}

/// Why a change's value is outside what its field allows (`Schemas/merge-rules.md`, "Values").
struct ValueProblem: Error, Sendable {
    var message: String
    init(_ message: String) { self.message = message }
}
