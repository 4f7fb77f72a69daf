import Foundation

/// The type and range of every field's value, and of keys (`Schemas/merge-rules.md`, "Values"). Every change
/// is checked here where it enters a replica — a local mutation, an import, a received bundle — so a replica
/// never holds a value it cannot merge, print or export.
enum ChangeRules {
    /// What a checked value carries beyond the raw value.
    enum Parsed: Sendable {
        case plain
        case content(ArticleContent)
        case creation(CommentCreation)
    }

    /// The most Unicode scalars in a comment.
    static let maxCommentScalars = 10_000
    /// Read and saved times: 1970 up to the end of year 9999, in ms.
    static let maxTimeMillis: Int64 = 253_402_300_799_999

    /// Checks a change's key and value against its field's rule.
    /// - Throws: ``ValueProblem`` whose message reads after "the key" / "the value" (see ``describe(_:)``).
    static func check(entity: EntityKind, field: FieldCode, key: String, value: ChangeValue) throws(ValueProblem) -> Parsed {
        if let problem = Keys.problem(withID: key) { throw ValueProblem("its key '\(Keys.printable(key))' \(problem)") }
        func expected(_ what: String) -> ValueProblem {
            ValueProblem("\(field.name) must be \(what), got \(describe(value))")
        }
        switch field {
        case .content:
            guard case .string(let text) = value else { throw expected("the canonical JSON of an article") }
            do {
                return .content(try ArticleContent.decode(text))
            } catch {
                throw ValueProblem("content \(error.message)")
            }
        case .created:
            guard case .string(let text) = value else { throw expected("the canonical JSON of a comment creation") }
            do {
                return .creation(try CommentCreation.decode(text, commentID: key))
            } catch {
                throw ValueProblem("created \(error.message)")
            }
        case .body:
            guard case .string(let text) = value else { throw expected("the comment's text") }
            if let problem = commentTextProblem(text) { throw ValueProblem("body \(problem)") }
        case .deleted:
            guard case .bool(true) = value else { throw expected("true") }
        case .read, .saved:
            switch value {
            case .null: break
            case .int(let t) where t >= 0 && t <= maxTimeMillis: break
            default: throw expected("a time in ms from 0 to \(maxTimeMillis), or null")
            }
        case .progress:
            switch value {
            case .null: break
            case .double(let p) where p.isFinite && p >= 0 && p <= 1 && p.sign == .plus: break
            default: throw expected("a number from 0 to 1, or null (a reset)")
            }
        }
        return .plain
    }

    /// Why a comment's text is not acceptable, or nil: 1…10,000 characters (Unicode scalars), not only white
    /// space, no U+0000.
    static func commentTextProblem(_ text: String) -> String? {
        if text.unicodeScalars.allSatisfy({ $0.properties.isWhitespace }) { return "is empty" }
        let count = text.unicodeScalars.count
        if count > maxCommentScalars { return "has \(count) characters (limit \(maxCommentScalars))" }
        if text.utf8.contains(0) { return "contains the character U+0000" }
        return nil
    }

    /// A value described for messages: its type and a short form.
    static func describe(_ value: ChangeValue) -> String {
        switch value {
        case .null: return "null"
        case .bool(let b): return "the boolean \(b)"
        case .int(let i): return "the integer \(i)"
        case .double(let d): return "the number \(d)"
        case .string(let s): return "a string of \(s.utf8.count) bytes"
        }
    }
}
