import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// An incremental JSON reader for import files: bytes come from a file in fixed-size chunks, values are parsed
// one at a time, and nothing but the current chunk and the value being parsed is ever held. Foundation's
// JSONSerialization only parses whole documents, which for a page of 100k articles means the whole file and
// every article at once.

// MARK: - Values

/// A parsed JSON value: one article object (or one page-level key's value) at a time.
enum JSONValue: Equatable {
    case null
    case bool(Bool)
    /// A number, as its text (articles have no numeric fields; unknown ones are only reported).
    case number(String)
    case string(String)
    case array([JSONValue])
    /// An object. A key given twice keeps its last value, as JSONSerialization does.
    case object([String: JSONValue])

    /// The JSON type's name, for messages.
    var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

/// A syntax error, with where it was found (1-based line and byte column).
struct JSONSyntaxError: Error, Equatable {
    var detail: String
    var line: Int
    var column: Int
}

// MARK: - Byte source

/// The bytes of an import file (read in chunks) or of data in memory, with the position tracked for messages.
///
/// Lines are counted where JSON allows a newline (white space), so counting costs nothing inside strings; a raw
/// newline inside a string is a syntax error anyway.
final class JSONByteStream {
    /// The size of one read from a file.
    static let chunkSize = 1 << 20

    private let fd: Int32?
    private let ownsDescriptor: Bool
    private var buffer: [UInt8]
    private var position = 0
    /// Bytes before `buffer[0]`.
    private var bufferOffset: Int64 = 0
    private var atEnd = false
    /// 1-based line of the current position.
    private(set) var line = 1
    /// Offset of the first byte of the current line.
    private var lineStart: Int64 = 0

    /// The total size, if known (a regular file, or data).
    let totalBytes: Int64?

    /// Reads `path` in chunks.
    /// - Throws: ``ReaderSyncError/invalidImport(_:)`` if it cannot be opened.
    init(path: String) throws {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else {
            let reason = String(cString: strerror(errno))
            throw ReaderSyncError.invalidImport("cannot read \(path): \(reason)")
        }
        var info = stat()
        if fstat(descriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR {
            close(descriptor)
            throw ReaderSyncError.invalidImport("cannot read \(path): it is a directory")
        }
        if fstat(descriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG {
            totalBytes = Int64(info.st_size)
        } else {
            totalBytes = nil
        }
        fd = descriptor
        ownsDescriptor = true
        buffer = []
    }

    /// Reads bytes held in memory.
    init(data: Data) {
        fd = nil
        ownsDescriptor = false
        buffer = [UInt8](data)
        totalBytes = Int64(data.count)
        atEnd = true
    }

    deinit {
        if ownsDescriptor, let fd { close(fd) }
    }

    /// Bytes consumed so far.
    var offset: Int64 { bufferOffset + Int64(position) }

    /// The 1-based byte column of the current position.
    var column: Int { Int(offset - lineStart) + 1 }

    /// Makes at least one unread byte available; false at the end of the input.
    @inline(__always)
    func fill() throws -> Bool {
        if position < buffer.count { return true }
        return try refill()
    }

    private func refill() throws -> Bool {
        guard !atEnd, let fd else { return false }
        bufferOffset += Int64(buffer.count)
        position = 0
        if buffer.count != Self.chunkSize { buffer = [UInt8](repeating: 0, count: Self.chunkSize) }
        var count = 0
        while true {
            count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, Self.chunkSize) }
            if count < 0 && errno == EINTR { continue }
            break
        }
        guard count >= 0 else {
            let reason = String(cString: strerror(errno))
            throw ReaderSyncError.invalidImport("cannot read the import file: \(reason)")
        }
        if count == 0 {
            atEnd = true
            buffer.removeAll(keepingCapacity: false)
            return false
        }
        if count < Self.chunkSize { buffer.removeSubrange(count...) }
        return true
    }

    /// The next byte without consuming it, or nil at the end.
    @inline(__always)
    func peek() throws -> UInt8? {
        guard try fill() else { return nil }
        return buffer[position]
    }

    /// Consumes one byte (after a `peek` that returned one).
    @inline(__always)
    func advance() { position += 1 }

    /// Consumes and returns the next byte, or nil at the end.
    @inline(__always)
    func next() throws -> UInt8? {
        guard try fill() else { return nil }
        let byte = buffer[position]
        position += 1
        return byte
    }

    /// Skips JSON white space. With `acrossLines` false, stops at a newline (JSON Lines: a value ends its line).
    /// Returns the next byte (not consumed), or nil at the end.
    func skipWhitespace(acrossLines: Bool) throws -> UInt8? {
        while try fill() {
            let byte = buffer[position]
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                position += 1
            case UInt8(ascii: "\n"):
                guard acrossLines else { return byte }
                position += 1
                line += 1
                lineStart = offset
            default:
                return byte
            }
        }
        return nil
    }

    /// Consumes a newline at the current position (JSON Lines), counting the line.
    func consumeNewline() {
        position += 1
        line += 1
        lineStart = offset
    }

    /// Skips a UTF-8 byte order mark at the very start.
    func skipByteOrderMark() throws {
        guard offset == 0, try fill(), buffer.count >= 3 else { return }
        if buffer[0] == 0xEF, buffer[1] == 0xBB, buffer[2] == 0xBF {
            position = 3
            lineStart = 3
        }
    }

    /// Appends bytes up to (not including) the next byte for which `stop` is true to `output`, refilling as
    /// needed; returns that byte (not consumed), or nil at the end of the input. Fails once `output` would
    /// pass `limit` bytes.
    func scan(into output: inout [UInt8], limit: Int, stop: (UInt8) -> Bool) throws -> UInt8? {
        while try fill() {
            let start = position
            let found: Int? = buffer.withUnsafeBufferPointer { bytes in
                var i = start
                while i < bytes.count {
                    if stop(bytes[i]) { return i }
                    i += 1
                }
                return nil
            }
            let end = found ?? buffer.count
            if end > start {
                guard output.count + (end - start) <= limit else {
                    throw JSONSyntaxError(detail: "a string is longer than \(limit >> 20) MiB", line: line, column: column)
                }
                output.append(contentsOf: buffer[start..<end])
            }
            position = end
            if let found { return buffer[found] }
        }
        return nil
    }
}

// MARK: - Parser

/// Parses JSON values from a ``JSONByteStream``.
struct JSONStreamParser {
    /// The deepest nesting accepted (an article needs three levels).
    static let maxDepth = 256
    /// The longest string accepted; an article body may have at most 4 MiB.
    static let maxStringBytes = 32 << 20

    let stream: JSONByteStream
    /// Whether white space inside a value may cross a newline (false for JSON Lines).
    var acrossLines: Bool
    private var scratch: [UInt8] = []

    init(stream: JSONByteStream, acrossLines: Bool) {
        self.stream = stream
        self.acrossLines = acrossLines
    }

    func error(_ detail: String) -> JSONSyntaxError {
        JSONSyntaxError(detail: detail, line: stream.line, column: stream.column)
    }

    /// Skips white space and returns the next byte (not consumed); fails at the end of the input or, in
    /// single-line mode, at a newline.
    mutating func nextToken(_ expected: @autoclosure () -> String) throws -> UInt8 {
        guard let byte = try stream.skipWhitespace(acrossLines: acrossLines) else {
            throw error("unexpected end of file, expected \(expected())")
        }
        if byte == UInt8(ascii: "\n") {
            throw error("the line ends inside a value, expected \(expected()) (JSON Lines holds one article per line)")
        }
        return byte
    }

    /// Consumes `byte` after white space, or fails.
    mutating func expect(_ byte: UInt8, _ what: String) throws {
        let found = try nextToken("'\(what)'")
        guard found == byte else { throw error("expected '\(what)', found \(Self.describe(found))") }
        stream.advance()
    }

    /// Parses one value.
    mutating func parseValue(depth: Int = 0) throws -> JSONValue {
        guard depth < Self.maxDepth else { throw error("nested deeper than \(Self.maxDepth) levels") }
        let byte = try nextToken("a value")
        switch byte {
        case UInt8(ascii: "{"):
            stream.advance()
            var object: [String: JSONValue] = [:]
            if try nextToken("a key or '}'") == UInt8(ascii: "}") {
                stream.advance()
                return .object(object)
            }
            while true {
                let key = try parseKey()
                try expect(UInt8(ascii: ":"), ":")
                object[key] = try parseValue(depth: depth + 1)
                let separator = try nextToken("',' or '}'")
                guard separator == UInt8(ascii: ",") || separator == UInt8(ascii: "}") else {
                    throw error("expected ',' or '}' after an object member, found \(Self.describe(separator))")
                }
                stream.advance()
                if separator == UInt8(ascii: "}") { return .object(object) }
            }
        case UInt8(ascii: "["):
            stream.advance()
            var array: [JSONValue] = []
            if try nextToken("a value or ']'") == UInt8(ascii: "]") {
                stream.advance()
                return .array(array)
            }
            while true {
                array.append(try parseValue(depth: depth + 1))
                let separator = try nextToken("',' or ']'")
                guard separator == UInt8(ascii: ",") || separator == UInt8(ascii: "]") else {
                    throw error("expected ',' or ']' after an array element, found \(Self.describe(separator))")
                }
                stream.advance()
                if separator == UInt8(ascii: "]") { return .array(array) }
            }
        case UInt8(ascii: "\""):
            stream.advance()
            return .string(try parseStringBody())
        case UInt8(ascii: "t"):
            try literal("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try literal("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try literal("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .number(try parseNumber())
        default:
            throw error("expected a value, found \(Self.describe(byte))")
        }
    }

    /// Parses an object key (a string) after white space.
    mutating func parseKey() throws -> String {
        let byte = try nextToken("a string key")
        guard byte == UInt8(ascii: "\"") else { throw error("expected a string key, found \(Self.describe(byte))") }
        stream.advance()
        return try parseStringBody()
    }

    private mutating func literal(_ word: StaticString) throws {
        let expected = word.withUTF8Buffer { Array($0) }
        for byte in expected {
            guard try stream.next() == byte else { throw error("expected '\(word)'") }
        }
    }

    private mutating func parseNumber() throws -> String {
        var text: [UInt8] = []
        func digits(_ text: inout [UInt8]) throws -> Int {
            var count = 0
            while let byte = try stream.peek(), (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) {
                text.append(byte)
                stream.advance()
                count += 1
            }
            return count
        }
        if try stream.peek() == UInt8(ascii: "-") {
            text.append(UInt8(ascii: "-"))
            stream.advance()
        }
        let first = try stream.peek()
        let integerDigits = try digits(&text)
        guard integerDigits > 0 else { throw error("expected a digit in a number") }
        if first == UInt8(ascii: "0") && integerDigits > 1 { throw error("a number has a leading zero") }
        if try stream.peek() == UInt8(ascii: ".") {
            text.append(UInt8(ascii: "."))
            stream.advance()
            guard try digits(&text) > 0 else { throw error("expected a digit after '.' in a number") }
        }
        if let e = try stream.peek(), e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            text.append(e)
            stream.advance()
            if let sign = try stream.peek(), sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
                text.append(sign)
                stream.advance()
            }
            guard try digits(&text) > 0 else { throw error("expected a digit in a number's exponent") }
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// Parses a string's contents after its opening quote.
    private mutating func parseStringBody() throws -> String {
        scratch.removeAll(keepingCapacity: true)
        while true {
            let stop = try stream.scan(into: &scratch, limit: Self.maxStringBytes) { byte in
                byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20
            }
            guard let stop else { throw error("unexpected end of file inside a string") }
            stream.advance()
            switch stop {
            case UInt8(ascii: "\""):
                guard let text = String(validating: scratch, as: UTF8.self) else {
                    throw error("a string is not valid UTF-8")
                }
                if scratch.count > 1 << 16 { scratch = [] }
                return text
            case UInt8(ascii: "\\"):
                try parseEscape()
            default:
                throw error(stop == UInt8(ascii: "\n")
                    ? "a string is not closed before the end of the line"
                    : "a control character (0x\(String(stop, radix: 16))) inside a string must be escaped")
            }
        }
    }

    private mutating func parseEscape() throws {
        guard let byte = try stream.next() else { throw error("unexpected end of file inside a string") }
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): scratch.append(byte)
        case UInt8(ascii: "b"): scratch.append(0x08)
        case UInt8(ascii: "f"): scratch.append(0x0C)
        case UInt8(ascii: "n"): scratch.append(0x0A)
        case UInt8(ascii: "r"): scratch.append(0x0D)
        case UInt8(ascii: "t"): scratch.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try hex4()
            if (0xD800...0xDBFF).contains(scalar) {
                guard try stream.next() == UInt8(ascii: "\\"), try stream.next() == UInt8(ascii: "u") else {
                    throw error("a \\u escape holds half of a surrogate pair")
                }
                let low = try hex4()
                guard (0xDC00...0xDFFF).contains(low) else { throw error("a \\u escape holds half of a surrogate pair") }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00...0xDFFF).contains(scalar) {
                throw error("a \\u escape holds half of a surrogate pair")
            }
            guard let unicode = Unicode.Scalar(scalar) else { throw error("a \\u escape is not a character") }
            var encoded: [UInt8] = []
            UTF8.encode(unicode) { encoded.append($0) }
            scratch.append(contentsOf: encoded)
        default:
            throw error("unknown escape '\\\(Self.describe(byte, quoted: false))' in a string")
        }
    }

    private mutating func hex4() throws -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let byte = try stream.next() else { throw error("unexpected end of file inside a string") }
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw error("expected four hex digits after \\u")
            }
            value = value << 4 | digit
        }
        return value
    }

    /// A byte for a message: `'x'`, or its hex value when it is not printable ASCII.
    static func describe(_ byte: UInt8, quoted: Bool = true) -> String {
        if byte == UInt8(ascii: "\n") { return "the end of the line" }
        if (0x21...0x7E).contains(byte) {
            let character = String(UnicodeScalar(byte))
            return quoted ? "'\(character)'" : character
        }
        return "byte 0x\(String(byte, radix: 16))"
    }
}
