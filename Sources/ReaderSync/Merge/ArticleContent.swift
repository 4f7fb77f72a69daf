import Foundation

/// An article's content as one change carries it: every field but the id, as canonical JSON
/// (`Schemas/merge-rules.md`, "Values" and "Canonical JSON").
///
/// The body is either held (`body`) or carried by reference: only its SHA-256 (`bodyReference`), when the
/// replica that sent it had evicted it (`Schemas/bundle-format.md`, "Bodies by reference").
struct ArticleContent: Equatable, Sendable {
    var source: String
    var url: String?
    var title: String
    var byline: String?
    /// The text, or nil when only its digest is held.
    var heldBody: String?
    /// The SHA-256 of the body's UTF-8 bytes when the body is not held.
    var bodyReference: [UInt8]?

    /// The text, or an empty string when it is not held.
    var body: String {
        get { heldBody ?? "" }
        set { heldBody = newValue; bodyReference = nil }
    }

    /// The SHA-256 of the body's UTF-8 bytes, held or not.
    var bodyDigest: [UInt8] { heldBody.map { SHA256.digest(utf8: $0) } ?? bodyReference ?? [] }
    var topics: [String]
    var related: [String]
    var publishedAtMillis: Int64?
    var updatedAtMillis: Int64?

    init(source: String, url: String?, title: String, byline: String?, body: String, topics: [String],
         related: [String], publishedAtMillis: Int64?, updatedAtMillis: Int64?) {
        self.source = source
        self.url = url
        self.title = title
        self.byline = byline
        self.heldBody = body
        self.bodyReference = nil
        self.topics = topics
        self.related = related
        self.publishedAtMillis = publishedAtMillis
        self.updatedAtMillis = updatedAtMillis
    }

    init(_ article: Article) {
        self.init(source: article.source, url: article.url, title: article.title, byline: article.byline,
                  body: article.body, topics: article.topics, related: article.related,
                  publishedAtMillis: article.publishedAt.map(ISO8601.millis(from:)),
                  updatedAtMillis: article.updatedAt.map(ISO8601.millis(from:)))
    }

    func article(id: String) -> Article {
        Article(id: id, source: source, url: url, title: title, byline: byline, body: body,
                topics: topics, related: related,
                publishedAt: publishedAtMillis.map(ISO8601.date(fromMillis:)),
                updatedAt: updatedAtMillis.map(ISO8601.date(fromMillis:)))
    }

    /// Whether `other` is the same version: every field equal and the same body, held or by digest.
    func matches(_ other: ArticleContent) -> Bool {
        source == other.source && url == other.url && title == other.title && byline == other.byline
            && topics == other.topics && related == other.related && publishedAtMillis == other.publishedAtMillis
            && updatedAtMillis == other.updatedAtMillis
            && (heldBody != nil && other.heldBody != nil
                ? (heldBody ?? "").utf8.elementsEqual((other.heldBody ?? "").utf8) : bodyDigest == other.bodyDigest)
    }

    /// The sort key of the feed: publication time, else update time, else 0.
    var sortKey: Int64 { publishedAtMillis ?? updatedAtMillis ?? 0 }

    // MARK: Limits

    /// The limits of every field, in UTF-8 bytes unless said otherwise (`Schemas/merge-rules.md`, "Values").
    enum Limit {
        static let source = 512
        static let title = 2048
        static let byline = 1024
        static let url = 4096
        static let topics = 100
        static let topic = 256
        static let related = 500
        static let body = 4 << 20
        /// The whole canonical JSON, as a bundle carries it.
        static let encoded = 8 << 20
        /// Dates: year 1 to year 9999, in ms since 1970.
        static let minMillis: Int64 = -62_135_596_800_000
        static let maxMillis: Int64 = 253_402_300_799_999
    }

    /// The first problem with the content, naming the field; nil when every field is within its rule.
    /// `encodedBytes` is the size of its canonical JSON (computed when not given).
    func problem(encodedBytes: Int? = nil) -> String? {
        func line(_ name: String, _ value: String, limit: Int, required: Bool) -> String? {
            let bytes = value.utf8.count
            if required && value.unicodeScalars.allSatisfy({ $0.properties.isWhitespace }) { return "\(name) is empty" }
            if bytes > limit { return "\(name) is \(bytes) bytes (limit \(limit))" }
            if let bad = value.unicodeScalars.first(where: Keys.isControl) {
                return "\(name) contains the control character U+\(Keys.hex4(bad.value))"
            }
            return nil
        }
        if let p = line("source", source, limit: Limit.source, required: true) { return p }
        if let p = line("title", title, limit: Limit.title, required: true) { return p }
        if let byline, let p = line("byline", byline, limit: Limit.byline, required: false) { return p }
        if let url, let p = line("url", url, limit: Limit.url, required: false) { return p }
        if topics.count > Limit.topics { return "topics has \(topics.count) entries (limit \(Limit.topics))" }
        for (i, topic) in topics.enumerated() {
            if let p = line("topics[\(i)]", topic, limit: Limit.topic, required: true) { return p }
        }
        if related.count > Limit.related { return "related has \(related.count) ids (limit \(Limit.related))" }
        for (i, id) in related.enumerated() {
            if let p = Keys.problem(withID: id) { return "related[\(i)] \(p)" }
        }
        if let body = heldBody {
            let bodyBytes = body.utf8.count
            if bodyBytes > Limit.body { return "body is \(bodyBytes) bytes (limit \(Limit.body))" }
            if body.utf8.contains(0) { return "body contains the character U+0000" }
        } else if bodyReference?.count != 32 {
            return "bodySHA256 is not a SHA-256 digest"
        }
        for (name, value) in [("publishedAt", publishedAtMillis), ("updatedAt", updatedAtMillis)] {
            if let value, value < Limit.minMillis || value > Limit.maxMillis {
                return "\(name) \(value) is outside years 1 to 9999"
            }
        }
        let size = encodedBytes ?? encoded().utf8.count
        if size > Limit.encoded { return "its canonical JSON is \(size) bytes (limit \(Limit.encoded))" }
        return nil
    }

    // MARK: Canonical JSON

    /// The canonical JSON text (keys in byte order: body or bodySHA256, byline, publishedAt, related, source,
    /// title, topics, updatedAt, url; absent optionals omitted).
    func encoded() -> String {
        var w = CanonicalText.Writer(capacity: (heldBody?.utf8.count ?? 64) + 256)
        if let heldBody {
            w.string("body", heldBody)
        } else {
            w.string("bodySHA256", SHA256.hexString(bodyReference ?? []))
        }
        w.string("byline", byline)
        w.int("publishedAt", publishedAtMillis)
        w.strings("related", related)
        w.string("source", source)
        w.string("title", title)
        w.strings("topics", topics)
        w.int("updatedAt", updatedAtMillis)
        w.string("url", url)
        return String(decoding: w.finish(), as: UTF8.self)
    }

    /// Parses canonical content and checks every field's rule.
    static func decode(_ text: String) throws(ValueProblem) -> ArticleContent {
        var p = CanonicalText.Parser(text)
        let content: ArticleContent
        do {
            try p.begin()
            var body: String?
            var reference: [UInt8]?
            if try p.key("body") {
                body = try p.string()
            } else {
                try p.requireKey("bodySHA256")
                let hex = try p.string()
                guard let digest = SHA256.bytes(hex: hex) else {
                    throw ValueProblem("is not the canonical JSON of an article (bodySHA256 must be 64 lowercase hexadecimal digits)")
                }
                reference = digest
            }
            let byline = try p.key("byline") ? try p.string() : nil
            let published = try p.key("publishedAt") ? try p.int() : nil
            try p.requireKey("related")
            let related = try p.strings()
            try p.requireKey("source")
            let source = try p.string()
            try p.requireKey("title")
            let title = try p.string()
            try p.requireKey("topics")
            let topics = try p.strings()
            let updated = try p.key("updatedAt") ? try p.int() : nil
            let url = try p.key("url") ? try p.string() : nil
            try p.end()
            var parsed = ArticleContent(source: source, url: url, title: title, byline: byline, body: body ?? "",
                                        topics: topics, related: related, publishedAtMillis: published, updatedAtMillis: updated)
            if body == nil {
                parsed.heldBody = nil
                parsed.bodyReference = reference
            }
            content = parsed
        } catch let error as ValueProblem {
            throw error
        } catch let error as CanonicalText.ParseError {
            throw ValueProblem("is not the canonical JSON of an article (at byte \(error.offset): \(error.message))")
        } catch {
            throw ValueProblem("is not the canonical JSON of an article")
        }
        if let problem = content.problem(encodedBytes: text.utf8.count) { throw ValueProblem("is not a valid article: \(problem)") }
        return content
    }
}
