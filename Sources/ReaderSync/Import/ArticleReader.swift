public import Foundation

/// Reads the articles of an import file one at a time, in bounded memory, whatever the file's size.
///
/// Three shapes are read, told apart by the first character:
/// - the aggregator page `{"articles": [...], ...}` (as `news-page.json`): other keys of the page are skipped;
/// - a JSON array of article objects `[...]`;
/// - JSON Lines: one article object per line; blank lines are skipped; a lone object is one line.
///
/// The page and the array are read by an incremental tokenizer that yields one article object at a time; JSON
/// Lines are read line by line. Only the current 1 MiB chunk of the file and the article being parsed are held,
/// so memory does not grow with the file. CRLF line endings and a UTF-8 byte order mark are accepted.
///
/// Every problem names the line (JSON Lines) or the path (`articles[2].title`) and, for syntax errors, the
/// line and column: `line 3: not valid JSON (column 41: …)`, `articles[1].title: missing`.
///
/// **Unknown fields.** Keys that the ``Article`` model has no place for (for example `dateline`) are not
/// stored: they are counted in ``unknownFields`` (name, number of articles, first place seen) so the caller
/// can report them, or, with `rejectsUnknownFields`, refused with the place of the first one.
///
/// ```swift
/// let reader = try ArticleReader(contentsOf: URL(fileURLWithPath: "feed.jsonl"))
/// while let article = try reader.next() { print(reader.place, article.id) }
/// ```
public final class ArticleReader {
    /// The shape of an import file.
    public enum Shape: String, Sendable, Equatable {
        /// `{"articles": [...]}`.
        case page
        /// `[...]`.
        case array
        /// One article object per line (a file holding a single object is one line).
        case jsonLines
    }

    /// A field that articles of the file carry and the article model does not hold.
    public struct UnknownField: Sendable, Equatable {
        /// The key.
        public var name: String
        /// How many articles carry it.
        public var articles: Int
        /// Where it was first seen, e.g. `articles[0].dateline` or `line 2.lang`.
        public var firstPlace: String
    }

    /// The most distinct unknown field names tracked; occurrences of further names are counted in
    /// ``untrackedUnknownFields``.
    public static let maxTrackedUnknownFields = 100

    private enum State {
        case start
        /// Inside the page's `articles` array or a top-level array.
        case array(prefix: String, index: Int)
        /// JSON Lines; `lineStart` says whether the next value starts a line.
        case jsonLines
        case done
    }

    private let stream: JSONByteStream
    private var state = State.start
    private var unknown: [String: UnknownField] = [:]

    /// Whether an unknown field is an error instead of being counted.
    public let rejectsUnknownFields: Bool
    /// The file's shape, once the first ``next()`` has read far enough to know it.
    public private(set) var shape: Shape?
    /// Articles returned so far.
    public private(set) var articlesRead = 0
    /// Where the article last returned was: `line 3`, `articles[2]` or `[2]`.
    public private(set) var place = ""
    /// Occurrences of unknown fields whose names were not tracked (past ``maxTrackedUnknownFields`` names).
    public private(set) var untrackedUnknownFields = 0

    /// The input's size in bytes, when known (a regular file, or data).
    public var totalBytes: Int64? { stream.totalBytes }
    /// Bytes read so far.
    public var bytesRead: Int64 { stream.offset }
    /// Unknown fields seen so far, by name.
    public var unknownFields: [UnknownField] { unknown.values.sorted { $0.name < $1.name } }

    /// Reads the file at `url`.
    /// - Throws: ``ReaderSyncError/invalidImport(_:)`` if it cannot be opened.
    public init(contentsOf url: URL, rejectsUnknownFields: Bool = false) throws {
        stream = try JSONByteStream(path: url.path(percentEncoded: false))
        self.rejectsUnknownFields = rejectsUnknownFields
    }

    /// Reads import data held in memory.
    public init(data: Data, rejectsUnknownFields: Bool = false) {
        stream = JSONByteStream(data: data)
        self.rejectsUnknownFields = rejectsUnknownFields
    }

    /// The next article, or nil after the last one.
    ///
    /// - Throws: ``ReaderSyncError/invalidImport(_:)`` naming the line or field at fault. After an error the
    ///   reader is finished.
    public func next() throws -> Article? {
        do {
            let value: JSONValue?
            switch state {
            case .done: return nil
            case .start: value = try start()
            case .array(let prefix, let index): value = try nextElement(prefix: prefix, index: index)
            case .jsonLines: value = try nextLine()
            }
            guard let value else {
                state = .done
                return nil
            }
            let article = try ArticleImport.article(from: value, at: place) { field in
                try self.noteUnknown(field)
            }
            articlesRead += 1
            return article
        } catch {
            state = .done
            throw error
        }
    }

    // MARK: - Shapes

    private func start() throws -> JSONValue? {
        try stream.skipByteOrderMark()
        guard let first = try stream.skipWhitespace(acrossLines: true) else {
            throw ReaderSyncError.invalidImport("the file is empty")
        }
        switch first {
        case UInt8(ascii: "["):
            shape = .array
            stream.advance()
            return try firstElement(prefix: "")
        case UInt8(ascii: "{"):
            return try startObject()
        default:
            shape = .jsonLines
            state = .jsonLines
            return try nextLine()
        }
    }

    /// The first top-level object: the page (it has an `articles` key) or the first line of JSON Lines.
    private func startObject() throws -> JSONValue? {
        let startLine = stream.line
        var parser = JSONStreamParser(stream: stream, acrossLines: true)
        var members: [String: JSONValue] = [:]
        do {
            stream.advance()
            if try parser.nextToken("a key or '}'") == UInt8(ascii: "}") {
                stream.advance()
            } else {
                while true {
                    let key = try parser.parseKey()
                    try parser.expect(UInt8(ascii: ":"), ":")
                    if key == "articles" {
                        let token = try parser.nextToken("an array")
                        guard token == UInt8(ascii: "[") else { throw ReaderSyncError.invalidImport("articles: expected an array") }
                        shape = .page
                        stream.advance()
                        return try firstElement(prefix: "articles")
                    }
                    members[key] = try parser.parseValue(depth: 1)
                    let separator = try parser.nextToken("',' or '}'")
                    guard separator == UInt8(ascii: ",") || separator == UInt8(ascii: "}") else {
                        throw parser.error("expected ',' or '}' after an object member, found \(JSONStreamParser.describe(separator))")
                    }
                    stream.advance()
                    if separator == UInt8(ascii: "}") { break }
                }
            }
        } catch let error as JSONSyntaxError {
            throw Self.syntax("line \(startLine)", error, lineOfPlace: startLine)
        }
        // Not a page: an article on line `startLine`, and JSON Lines continue after it.
        shape = .jsonLines
        state = .jsonLines
        place = "line \(startLine)"
        try endOfLine(after: place)
        return .object(members)
    }

    private func firstElement(prefix: String) throws -> JSONValue? {
        var parser = JSONStreamParser(stream: stream, acrossLines: true)
        do {
            if try parser.nextToken("an article or ']'") == UInt8(ascii: "]") {
                stream.advance()
                try endOfArray(prefix: prefix)
                return nil
            }
        } catch let error as JSONSyntaxError {
            throw Self.syntax(prefix.isEmpty ? "the array" : prefix, error)
        }
        return try element(prefix: prefix, index: 0)
    }

    private func nextElement(prefix: String, index: Int) throws -> JSONValue? {
        var parser = JSONStreamParser(stream: stream, acrossLines: true)
        let after = "after \(prefix)[\(index - 1)]"
        do {
            let separator = try parser.nextToken("',' or ']'")
            guard separator == UInt8(ascii: ",") || separator == UInt8(ascii: "]") else {
                throw parser.error("expected ',' or ']' after an article, found \(JSONStreamParser.describe(separator))")
            }
            stream.advance()
            if separator == UInt8(ascii: "]") {
                try endOfArray(prefix: prefix)
                return nil
            }
        } catch let error as JSONSyntaxError {
            throw Self.syntax(after, error)
        }
        return try element(prefix: prefix, index: index)
    }

    private func element(prefix: String, index: Int) throws -> JSONValue {
        place = "\(prefix)[\(index)]"
        var parser = JSONStreamParser(stream: stream, acrossLines: true)
        do {
            let value = try parser.parseValue(depth: prefix.isEmpty ? 1 : 2)
            state = .array(prefix: prefix, index: index + 1)
            return value
        } catch let error as JSONSyntaxError {
            throw Self.syntax(place, error)
        }
    }

    /// After the closing `]`: the rest of the page object (skipped), then nothing but white space.
    private func endOfArray(prefix: String) throws {
        var parser = JSONStreamParser(stream: stream, acrossLines: true)
        do {
            if shape == .page {
                while true {
                    let separator = try parser.nextToken("',' or '}'")
                    guard separator == UInt8(ascii: ",") || separator == UInt8(ascii: "}") else {
                        throw parser.error("expected ',' or '}' after the articles, found \(JSONStreamParser.describe(separator))")
                    }
                    stream.advance()
                    if separator == UInt8(ascii: "}") { break }
                    let key = try parser.parseKey()
                    if key == "articles" { throw ReaderSyncError.invalidImport("articles: the page has two \"articles\" keys") }
                    try parser.expect(UInt8(ascii: ":"), ":")
                    _ = try parser.parseValue(depth: 1)
                }
            }
            if let extra = try stream.skipWhitespace(acrossLines: true) {
                throw parser.error("unexpected \(JSONStreamParser.describe(extra)) after the end of the \(shape == .page ? "page" : "array")")
            }
        } catch let error as JSONSyntaxError {
            throw Self.syntax(shape == .page ? "the page" : "the array", error)
        }
        state = .done
    }

    /// The next non-blank line's value (JSON Lines), or nil at the end of the file.
    private func nextLine() throws -> JSONValue? {
        while true {
            guard let byte = try stream.skipWhitespace(acrossLines: false) else { return nil }
            if byte == UInt8(ascii: "\n") {
                stream.consumeNewline()
                continue
            }
            break
        }
        let line = stream.line
        place = "line \(line)"
        var parser = JSONStreamParser(stream: stream, acrossLines: false)
        let value: JSONValue
        do {
            value = try parser.parseValue()
        } catch let error as JSONSyntaxError {
            throw Self.syntax(place, error, lineOfPlace: line)
        }
        try endOfLine(after: place)
        return value
    }

    /// After a JSON Lines value: only white space up to the end of the line.
    private func endOfLine(after place: String) throws {
        guard let byte = try stream.skipWhitespace(acrossLines: false) else { return }
        if byte == UInt8(ascii: "\n") {
            stream.consumeNewline()
            return
        }
        throw Self.syntax(place, JSONSyntaxError(detail: "expected the end of the line after the article, found \(JSONStreamParser.describe(byte))",
                                                 line: stream.line, column: stream.column), lineOfPlace: stream.line)
    }

    /// `place: not valid JSON (line L, column C: detail)`; the line is left out when `place` names it.
    private static func syntax(_ place: String, _ error: JSONSyntaxError, lineOfPlace: Int? = nil) -> ReaderSyncError {
        let position = error.line == lineOfPlace ? "column \(error.column)" : "line \(error.line), column \(error.column)"
        return .invalidImport("\(place): not valid JSON (\(position): \(error.detail))")
    }

    // MARK: - Unknown fields

    private func noteUnknown(_ field: String) throws {
        if rejectsUnknownFields {
            throw ReaderSyncError.invalidImport(
                "\(place).\(field): not a field of an article (\(ArticleImport.knownFields.sorted().joined(separator: ", ")))")
        }
        if var entry = unknown[field] {
            entry.articles += 1
            unknown[field] = entry
        } else if unknown.count < Self.maxTrackedUnknownFields {
            unknown[field] = UnknownField(name: field, articles: 1, firstPlace: "\(place).\(field)")
        } else {
            untrackedUnknownFields += 1
        }
    }
}
