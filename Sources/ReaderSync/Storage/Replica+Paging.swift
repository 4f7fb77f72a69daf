import Foundation
import GRDB

/// A position in the feed, for paging: the sort position of the last article of a page.
///
/// The feed sorts by sort key (publication time, else update time, else 0) descending, then id ascending; a
/// cursor names one article's place in that order, so the next page starts right after it even when articles
/// are added meanwhile. Its text form (``description``) is opaque: pass it back as it is.
public struct FeedCursor: Sendable, Hashable, CustomStringConvertible, LosslessStringConvertible {
    /// The sort key of the article: milliseconds since 1970 of its publication (else update) time, else 0.
    public var sortKey: Int64
    /// The article's id.
    public var articleID: String

    /// Creates a cursor after the article with `articleID` at `sortKey`.
    public init(sortKey: Int64, articleID: String) {
        self.sortKey = sortKey
        self.articleID = articleID
    }

    /// The cursor after `article`, from its dates.
    public init(after article: Article) {
        let date = article.publishedAt ?? article.updatedAt
        self.init(sortKey: date.map(ISO8601.millis(from:)) ?? 0, articleID: article.id)
    }

    /// The opaque text form: `f1.` and URL-safe base64 of the sort key and the id.
    public var description: String {
        let payload = Data("\(sortKey)\n\(articleID)".utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        return "f1.\(payload)"
    }

    /// Parses the text form; nil for anything ``description`` did not make.
    public init?(_ description: String) {
        guard description.hasPrefix("f1.") else { return nil }
        var base64 = description.dropFirst(3).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64), let text = String(data: data, encoding: .utf8),
              let newline = text.firstIndex(of: "\n"), let key = Int64(text[..<newline]) else { return nil }
        let id = String(text[text.index(after: newline)...])
        guard !id.isEmpty else { return nil }
        self.init(sortKey: key, articleID: id)
    }
}

/// One page of the feed.
public struct FeedPage: Sendable, Equatable {
    /// The items, in feed order.
    public var items: [FeedItem]
    /// Where the next page starts, or nil when this page ends the feed.
    public var next: FeedCursor?
}

extension Replica {
    /// One page of the feed: at most `limit` items after `cursor` (from the start when nil), in feed order
    /// (newest first, then by id), with this account's read state, filtered by `query`.
    ///
    /// Unlike ``feed(_:)``, the `source` and `topic` filters match case-insensitively (Unicode case folding),
    /// and `query.limit` is not used (`limit` is). Each page costs one index range scan from the cursor, so
    /// paging through a large feed never re-reads earlier pages.
    ///
    /// - Parameters:
    ///   - includeBodies: when false, every article's ``Article/body`` is empty and bodies are not read (a list
    ///     does not show them).
    /// - Throws: ``ReaderSyncError/invalidInput(_:)`` when `limit` is below 1.
    public func feedPage(_ query: FeedQuery = FeedQuery(), after cursor: FeedCursor? = nil, limit: Int,
                         includeBodies: Bool = true) throws -> FeedPage {
        guard limit >= 1 else { throw ReaderSyncError.invalidInput("a feed page must hold at least one item, got \(limit)") }
        var conditions: [String] = []
        var arguments: StatementArguments = ["account": account, "bodies": includeBodies, "limit": limit + 1]
        if query.unreadOnly { conditions.append("r.read_at IS NULL") }
        if query.savedOnly { conditions.append("r.saved_at IS NOT NULL") }
        if let source = query.source {
            conditions.append("a.source = :source COLLATE swiftCaseInsensitiveCompare")
            _ = arguments.append(contentsOf: ["source": source])
        }
        if let topic = query.topic {
            conditions.append("EXISTS (SELECT 1 FROM json_each(a.topics) WHERE json_each.value = :topic COLLATE swiftCaseInsensitiveCompare)")
            _ = arguments.append(contentsOf: ["topic": topic])
        }
        if let cursor {
            // `sort_key <= :key` is a range on the feed index (sort_key DESC, id); the rest picks the tail of ties.
            conditions.append("a.sort_key <= :key AND (a.sort_key < :key OR a.id > :after)")
            _ = arguments.append(contentsOf: ["key": cursor.sortKey, "after": cursor.articleID])
        }
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        return try read("read feed page") { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT a.id, a.source, a.url, a.title, a.byline, CASE WHEN :bodies THEN a.body ELSE '' END AS body,
                       a.topics, a.related, a.published_at, a.updated_at, a.sort_key,
                       r.read_at, r.progress, r.saved_at,
                       (SELECT COUNT(*) FROM comment c WHERE c.article_id = a.id AND c.deleted = 0) AS comment_count
                FROM article a
                LEFT JOIN read_state r ON r.article_id = a.id AND r.account = :account
                \(filter)
                ORDER BY a.sort_key DESC, a.id
                LIMIT :limit
                """, arguments: arguments)
            var items: [FeedItem] = []
            var next: FeedCursor?
            for (index, row) in rows.enumerated() {
                if index == limit {
                    let last = rows[index - 1]
                    next = FeedCursor(sortKey: last["sort_key"], articleID: last["id"])
                    break
                }
                let article = Article(
                    id: row["id"], source: row["source"], url: row["url"], title: row["title"], byline: row["byline"],
                    body: row["body"], topics: try Self.stringList(row["topics"]), related: try Self.stringList(row["related"]),
                    publishedAt: (row["published_at"] as Int64?).map(ISO8601.date(fromMillis:)),
                    updatedAt: (row["updated_at"] as Int64?).map(ISO8601.date(fromMillis:)))
                items.append(FeedItem(article: article,
                                      readState: ReadState(row: row, account: account, articleID: article.id),
                                      commentCount: row["comment_count"]))
            }
            return FeedPage(items: items, next: next)
        }
    }

    /// Decodes a stored JSON array of strings (the `topics` and `related` columns).
    private static func stringList(_ text: String) throws -> [String] {
        do {
            return try JSONDecoder().decode([String].self, from: Data(text.utf8))
        } catch {
            throw ReaderSyncError.storage("an article row holds an unreadable list: \(text.prefix(60))")
        }
    }
}
