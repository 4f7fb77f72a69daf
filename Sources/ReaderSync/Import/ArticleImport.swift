public import Foundation

/// Reads article files: the aggregator page shape (`{"articles": [...]}`, as in `news-page.json`), a JSON
/// array of articles, or JSON Lines (one article object per line).
///
/// Every problem names the line (JSON Lines) or the path of the field (`articles[2].title`), and a file with
/// any problem yields no articles at all. These functions collect every article in memory; to import a file of
/// any size in bounded memory, read it with ``ArticleReader`` and import with
/// ``Replica/importArticles(from:progress:)``.
public enum ArticleImport {
    /// The keys an article object may carry: the ``Article`` fields, `contributors` (appended to the body, as
    /// the page shape keeps it apart) and `comments` (accepted only empty: comments are written by accounts).
    public static let knownFields: Set<String> = [
        "id", "source", "url", "title", "byline", "body", "topics", "related", "publishedAt", "updatedAt",
        "contributors", "comments",
    ]

    /// Parses an import file of any size.
    /// - Throws: ``ReaderSyncError/invalidImport(_:)`` naming the line or field at fault.
    public static func parse(contentsOf url: URL) throws -> [Article] {
        try collect(try ArticleReader(contentsOf: url))
    }

    /// Parses import data (see the type's documentation for the formats).
    /// - Throws: ``ReaderSyncError/invalidImport(_:)`` naming the line or field at fault.
    public static func parse(_ data: Data) throws -> [Article] {
        try collect(ArticleReader(data: data))
    }

    private static func collect(_ reader: ArticleReader) throws -> [Article] {
        var articles: [Article] = []
        while let article = try reader.next() { articles.append(article) }
        return articles
    }

    /// Builds an article from one parsed object at `place`; `unknown` is called with each key that is not in
    /// ``knownFields``.
    static func article(from value: JSONValue, at place: String, unknown: (String) throws -> Void) throws -> Article {
        guard case .object(let object) = value else {
            throw ReaderSyncError.invalidImport("\(place): expected an article object, found \(value.typeName)")
        }
        func fail(_ field: String, _ message: String) -> ReaderSyncError {
            .invalidImport("\(place).\(field): \(message)")
        }
        func string(_ field: String, required: Bool) throws -> String? {
            switch object[field] {
            case nil, .null?:
                if required { throw fail(field, "missing") }
                return nil
            case .string(let s)?:
                if required && s.trimmingCharacters(in: .whitespaces).isEmpty { throw fail(field, "is empty") }
                return s
            case let other?:
                throw fail(field, "expected a string, found \(other.typeName)")
            }
        }
        func strings(_ field: String) throws -> [String] {
            switch object[field] {
            case nil, .null?: return []
            case .array(let list)?:
                return try list.enumerated().map { item in
                    guard case .string(let s) = item.element else {
                        throw fail("\(field)[\(item.offset)]", "expected a string, found \(item.element.typeName)")
                    }
                    return s
                }
            case let other?:
                throw fail(field, "expected an array of strings, found \(other.typeName)")
            }
        }
        func date(_ field: String) throws -> Date? {
            guard let text = try string(field, required: false) else { return nil }
            guard let date = ImportDate.parse(text) else {
                throw fail(field, "'\(text)' is not an ISO 8601 date-time such as 2025-07-03T12:00:00Z")
            }
            return date
        }

        for key in object.keys.sorted() where !knownFields.contains(key) { try unknown(key) }

        let id = try string("id", required: true) ?? ""
        var paragraphs: [String]
        switch object["body"] {
        case .string(let s)?: paragraphs = [s]
        case .array?: paragraphs = try strings("body")
        case nil, .null?: throw fail("body", "missing")
        case let other?: throw fail("body", "expected a string or an array of paragraphs, found \(other.typeName)")
        }
        // The page shape keeps the contributor line apart from the body; it is part of the text a reader sees.
        if let contributors = try string("contributors", required: false), !contributors.isEmpty {
            paragraphs.append(contributors)
        }
        if let comments = object["comments"] {
            guard case .array(let list) = comments else { throw fail("comments", "expected an array") }
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

/// Parses import dates: RFC 3339 date-times, fast for the common `2025-07-03T12:00:00(.123)(Z|+02:00)`, and
/// through `ISO8601DateFormatter` for anything else, so exactly the dates accepted before are accepted.
enum ImportDate {
    static func parse(_ text: String) -> Date? {
        switch fastMillis(text) {
        case .millis(let millis): return Date(timeIntervalSince1970: Double(millis) / 1000)
        case .impossible: return nil
        case .otherForm: return ISO8601.parse(text)
        }
    }

    enum FastResult: Equatable {
        case millis(Int64)
        /// The common form, but no such date or time (February 30, 25:00): refused, never rolled over.
        case impossible
        /// Another form: left to the formatter.
        case otherForm
    }

    /// Milliseconds since 1970 for `YYYY-MM-DDTHH:MM:SS`, an optional fraction of 1 to 3 digits, and `Z` or
    /// `±HH:MM`.
    static func fastMillis(_ text: String) -> FastResult {
        guard let millis = fastParse(text) else { return .otherForm }
        return millis
    }

    private static func fastParse(_ text: String) -> FastResult? {
        let b = Array(text.utf8)
        guard b.count >= 20 else { return nil }
        func number(_ from: Int, _ count: Int) -> Int? {
            var value = 0
            for i in from..<(from + count) {
                guard i < b.count, (48...57).contains(b[i]) else { return nil }
                value = value * 10 + Int(b[i] - 48)
            }
            return value
        }
        guard let year = number(0, 4), b[4] == 45, let month = number(5, 2), b[7] == 45, let day = number(8, 2),
              b[10] == 84, let hour = number(11, 2), b[13] == 58, let minute = number(14, 2), b[16] == 58,
              let second = number(17, 2) else { return nil }
        guard (1...12).contains(month), day >= 1, day <= daysInMonth(year, month), hour < 24, minute < 60,
              second < 60 else { return .impossible }
        var i = 19
        var millis = 0
        if b[i] == 46 {
            var digits = 0
            i += 1
            while i < b.count, (48...57).contains(b[i]) {
                guard digits < 3 else { return nil }
                millis = millis * 10 + Int(b[i] - 48)
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            for _ in digits..<3 { millis *= 10 }
        }
        guard i < b.count else { return nil }
        var offsetSeconds = 0
        if b[i] == 90, i + 1 == b.count {
            offsetSeconds = 0
        } else if b[i] == 43 || b[i] == 45, i + 6 == b.count, let h = number(i + 1, 2), b[i + 3] == 58,
                  let m = number(i + 4, 2), h < 24, m < 60 {
            offsetSeconds = (h * 3600 + m * 60) * (b[i] == 45 ? -1 : 1)
        } else {
            return nil
        }
        let days = daysFromCivil(year, month, day)
        let seconds = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offsetSeconds)
        return .millis(seconds * 1000 + Int64(millis))
    }

    private static func daysInMonth(_ year: Int, _ month: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
    private static func daysFromCivil(_ year: Int, _ month: Int, _ day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
