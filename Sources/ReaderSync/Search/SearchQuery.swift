import Foundation

/// A reader's search query, checked and turned into an FTS5 expression in which every term is quoted, so no
/// input can reach FTS5's own syntax (column filters, `NEAR`, `^`) or produce an SQLite error.
///
/// The syntax (`README.md`, "Search"):
/// - words: `kremlin talks` finds articles with both words (AND is implied);
/// - `"exact phrase"` in double quotes;
/// - a prefix: `ukrain*` (a `*` at the end of a word or phrase);
/// - `OR`, `AND`, `NOT` in capitals: `kremlin OR moscow`, `talks NOT ukraine`; NOT binds tightest, then AND,
///   then OR; parentheses group: `(kremlin OR moscow) talks`.
/// Case and accents do not matter: `kremlin` finds "Kremlin", `resume` finds "résumé".
struct SearchQuery {
    /// The FTS5 expression.
    let expression: String

    static let maxBytes = 1000
    static let maxTerms = 64

    private enum Token: Equatable {
        case term(String, prefix: Bool)
        case phrase(String, prefix: Bool)
        case and, or, not, open, close
    }

    /// Parses `text`.
    /// - Throws: ``ReaderSyncError/invalidInput(_:)`` with one line that says what is wrong and where.
    init(_ text: String) throws {
        func fail(_ message: String) -> ReaderSyncError {
            ReaderSyncError.invalidInput("invalid search query: \(message)")
        }
        guard text.utf8.count <= Self.maxBytes else {
            throw fail("it is \(text.utf8.count) bytes long (limit \(Self.maxBytes))")
        }
        let tokens = try Self.tokens(text, fail: fail)
        guard !tokens.isEmpty else { throw fail("it is empty; give at least one word") }
        let terms = tokens.filter { if case .term = $0 { return true }; if case .phrase = $0 { return true }; return false }
        guard terms.count <= Self.maxTerms else { throw fail("it has \(terms.count) terms (limit \(Self.maxTerms))") }
        var parser = Parser(tokens: tokens, fail: fail)
        let expression = try parser.orExpression()
        if parser.position < tokens.count {
            throw fail(parser.tokens[parser.position] == .close ? "a ')' has no matching '('" : "unexpected \(Parser.describe(parser.tokens[parser.position]))")
        }
        self.expression = expression
    }

    private static func tokens(_ text: String, fail: (String) -> ReaderSyncError) throws -> [Token] {
        var tokens: [Token] = []
        let scalars = Array(text.unicodeScalars)
        var i = 0
        func hasSearchable(_ s: String) -> Bool {
            s.unicodeScalars.contains { $0.properties.isAlphabetic || $0.properties.numericType != nil }
        }
        while i < scalars.count {
            let c = scalars[i]
            if c.properties.isWhitespace { i += 1; continue }
            if c == "(" { tokens.append(.open); i += 1; continue }
            if c == ")" { tokens.append(.close); i += 1; continue }
            if c == "\"" {
                guard let end = scalars[(i + 1)...].firstIndex(of: "\"") else {
                    throw fail("a '\"' opens a phrase that is never closed")
                }
                let phrase = String(String.UnicodeScalarView(scalars[(i + 1)..<end]))
                guard hasSearchable(phrase) else { throw fail("the phrase \"\(phrase)\" has no letters or digits to search for") }
                i = end + 1
                var prefix = false
                if i < scalars.count, scalars[i] == "*" { prefix = true; i += 1 }
                tokens.append(.phrase(phrase, prefix: prefix))
                continue
            }
            var j = i
            while j < scalars.count, !scalars[j].properties.isWhitespace, !"()\"".unicodeScalars.contains(scalars[j]) { j += 1 }
            var word = String(String.UnicodeScalarView(scalars[i..<j]))
            i = j
            switch word {
            case "AND": tokens.append(.and); continue
            case "OR": tokens.append(.or); continue
            case "NOT": tokens.append(.not); continue
            default: break
            }
            var prefix = false
            if word.hasSuffix("*") { prefix = true; word.removeLast() }
            if word.contains("*") { throw fail("'*' marks a prefix and goes at the end of a word ('\(word)*')") }
            guard hasSearchable(word) else { throw fail("'\(word)\(prefix ? "*" : "")' has no letters or digits to search for") }
            tokens.append(.term(word, prefix: prefix))
        }
        return tokens
    }

    private struct Parser {
        let tokens: [Token]
        let fail: (String) -> ReaderSyncError
        var position = 0

        static func describe(_ token: Token) -> String {
            switch token {
            case .term(let w, _): return "'\(w)'"
            case .phrase(let p, _): return "\"\(p)\""
            case .and: return "AND"
            case .or: return "OR"
            case .not: return "NOT"
            case .open: return "'('"
            case .close: return "')'"
            }
        }

        mutating func orExpression() throws -> String {
            var parts = [try andExpression(after: nil)]
            while position < tokens.count, tokens[position] == .or {
                position += 1
                parts.append(try andExpression(after: "OR"))
            }
            return parts.count == 1 ? parts[0] : "(" + parts.joined(separator: " OR ") + ")"
        }

        mutating func andExpression(after op: String?) throws -> String {
            var parts = [try notExpression(after: op)]
            while position < tokens.count {
                switch tokens[position] {
                case .and:
                    position += 1
                    parts.append(try notExpression(after: "AND"))
                case .term, .phrase, .open:
                    parts.append(try notExpression(after: nil))
                default:
                    return parts.count == 1 ? parts[0] : "(" + parts.joined(separator: " AND ") + ")"
                }
            }
            return parts.count == 1 ? parts[0] : "(" + parts.joined(separator: " AND ") + ")"
        }

        mutating func notExpression(after op: String?) throws -> String {
            var left = try primary(after: op)
            while position < tokens.count, tokens[position] == .not {
                position += 1
                left = "(" + left + " NOT " + (try primary(after: "NOT")) + ")"
            }
            return left
        }

        mutating func primary(after op: String?) throws -> String {
            guard position < tokens.count else {
                if let op { throw fail("\(op) needs a term after it") }
                throw fail("it ends where a term should be")
            }
            let token = tokens[position]
            position += 1
            switch token {
            case .term(let word, let prefix), .phrase(let word, let prefix):
                return "\"" + word.replacingOccurrences(of: "\"", with: "\"\"") + "\"" + (prefix ? " *" : "")
            case .open:
                if position < tokens.count, tokens[position] == .close { throw fail("'()' is empty") }
                let inner = try orExpression()
                guard position < tokens.count, tokens[position] == .close else { throw fail("a '(' is never closed") }
                position += 1
                return "(" + inner + ")"
            case .close:
                throw fail(op.map { "\($0) needs a term after it, not ')'" } ?? "a ')' has no matching '('")
            case .and, .or, .not:
                let name = Self.describe(token)
                if let op { throw fail("\(op) is followed by \(name); put a term between them") }
                throw fail("\(name) needs a term before it (write 'a \(name) b')")
            }
        }
    }
}
