public import Foundation

/// Reads article files: the aggregator page shape (`{"articles": [...]}`, as in `news-page.json`), a JSON
/// array of articles, or JSON Lines (one article object per line).
///
/// Every problem names the line (JSON Lines) or the path of the field (`articles[2].title`), and a file with
/// any problem yields no articles at all.
public enum ArticleImport {
    /// The largest import file accepted.
    public static let maxFileBytes = 256 << 20

    /// Parses an import file.
    /// - Throws: ``ReaderSyncError/invalidImport(_:)`` naming the line or field at fault.
    public static func parse(contentsOf url: URL) throws -> [Article] {
        let data: Data
        do {
            let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
            if let size = attributes[.size] as? Int, size > maxFileBytes {
                throw ReaderSyncError.invalidImport("\(url.path) is \(size) bytes; the limit is \(maxFileBytes)")
            }
            data = try Data(contentsOf: url)
        } catch let error as ReaderSyncError {
            throw error
        } catch {
            throw ReaderSyncError.invalidImport("cannot read \(url.path): \(error.localizedDescription)")
        }
        return try parse(data)
    }

    /// Parses import data (see the type's documentation for the formats).
    /// - Throws: ``ReaderSyncError/invalidImport(_:)`` naming the line or field at fault.
    public static func parse(_ data: Data) throws -> [Article] {
        guard let text = String(data: data, encoding: .utf8) else {
            throw ReaderSyncError.invalidImport("the file is not UTF-8 text")
        }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw ReaderSyncError.invalidImport("the file is empty") }

        // A whole-file JSON document: the page shape, an array, or a single article.
        if let whole = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8), options: [.fragmentsAllowed]) {
            if let object = whole as? [String: Any], object["articles"] != nil {
                guard let list = object["articles"] as? [Any] else {
                    throw ReaderSyncError.invalidImport("articles: expected an array")
                }
                return try list.enumerated().map { try article(from: $0.element, at: "articles[\($0.offset)]") }
            }
            if let list = whole as? [Any] {
                return try list.enumerated().map { try article(from: $0.element, at: "[\($0.offset)]") }
            }
            if whole is [String: Any] {
                return [try article(from: whole, at: "line 1")]
            }
            throw ReaderSyncError.invalidImport("expected an object with \"articles\", an array, or JSON Lines")
        }

        // JSON Lines.
        var articles: [Article] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let content = line.trimmingCharacters(in: .whitespaces)
            if content.isEmpty { continue }
            let place = "line \(index + 1)"
            let object: Any
            do {
                object = try JSONSerialization.jsonObject(with: Data(content.utf8), options: [])
            } catch {
                throw ReaderSyncError.invalidImport("\(place): not valid JSON")
            }
            articles.append(try article(from: object, at: place))
        }
        return articles
    }

    static func article(from value: Any, at place: String) throws -> Article {
        guard let object = value as? [String: Any] else {
            throw ReaderSyncError.invalidImport("\(place): expected an article object")
        }
        func fail(_ field: String, _ message: String) -> ReaderSyncError {
            .invalidImport("\(place).\(field): \(message)")
        }
        func string(_ field: String, required: Bool) throws -> String? {
            switch object[field] {
            case nil, is NSNull:
                if required { throw fail(field, "missing") }
                return nil
            case let s as String:
                if required && s.trimmingCharacters(in: .whitespaces).isEmpty { throw fail(field, "is empty") }
                return s
            default:
                throw fail(field, "expected a string")
            }
        }
        func strings(_ field: String) throws -> [String] {
            switch object[field] {
            case nil, is NSNull: return []
            case let list as [Any]:
                return try list.enumerated().map { item in
                    guard let s = item.element as? String else { throw fail("\(field)[\(item.offset)]", "expected a string") }
                    return s
                }
            default:
                throw fail(field, "expected an array of strings")
            }
        }
        func date(_ field: String) throws -> Date? {
            guard let text = try string(field, required: false) else { return nil }
            guard let date = ISO8601.parse(text) else {
                throw fail(field, "'\(text)' is not an ISO 8601 date-time such as 2025-07-03T12:00:00Z")
            }
            return date
        }

        let id = try string("id", required: true) ?? ""
        var paragraphs: [String]
        switch object["body"] {
        case let s as String: paragraphs = [s]
        case is [Any]: paragraphs = try strings("body")
        case nil, is NSNull: throw fail("body", "missing")
        default: throw fail("body", "expected a string or an array of paragraphs")
        }
        // The page shape keeps the contributor line apart from the body; it is part of the text a reader sees.
        if let contributors = try string("contributors", required: false), !contributors.isEmpty {
            paragraphs.append(contributors)
        }
        if let comments = object["comments"] {
            guard let list = comments as? [Any] else { throw fail("comments", "expected an array") }
            guard list.isEmpty else {
                throw fail("comments", "has \(list.count) comments; comments are written by accounts, not imported")
            }
        }
        let article = Article(
            id: id, source: try string("source", required: true) ?? "",
            url: try string("url", required: false), title: try string("title", required: true) ?? "",
            byline: try string("byline", required: false),
            body: paragraphs.joined(separator: "\n\n"),
            topics: try strings("topics"), related: try strings("related"),
            publishedAt: try date("publishedAt"), updatedAt: try date("updatedAt"))
        do {
            try Replica.validate(article, at: place)
        } catch let error as ReaderSyncError {
            throw ReaderSyncError.invalidImport(error.message)
        }
        return article
    }
}
