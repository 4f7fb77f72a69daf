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
    /// Unlike ``feed(_:)-8eccn``, the `source` and `topic` filters match case-insensitively (Unicode case folding),
    /// and `query.limit` is not used (`limit` is). Each page costs one index range scan from the cursor, so
    /// paging through a large feed never re-reads earlier pages.
    ///
    /// - Parameters:
    ///   - query: the filters (unread, saved, source, topic).
    ///   - cursor: ``FeedPage/next`` of the previous page; nil for the first page.
    ///   - limit: at most this many items (1 or more).
    ///   - includeBodies: when false, every article's ``Article/body`` is empty and bodies are not read (a list
    ///     does not show them).
    /// - Throws: ``ReaderSyncError/invalidInput(_:)`` when `limit` is below 1.
    public func feedPage(_ query: FeedQuery = FeedQuery(), after cursor: FeedCursor? = nil, limit: Int,
                         includeBodies: Bool = true) throws -> FeedPage {
        guard limit >= 1 else { throw ReaderSyncError.invalidInput("a feed page must hold at least one item, got \(limit)") }
        var conditions: [String] = ["a.content_hlc IS NOT NULL"]
        var arguments: StatementArguments = ["bodies": includeBodies, "limit": limit + 1]
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
            // `sort_key <= :key` is a range on the feed index (sort_key DESC, key); the rest picks the tail of ties.
            // Keys compare as bytes (BINARY), the same order the index keeps.
            conditions.append("a.sort_key <= :key AND (a.sort_key < :key OR a.key > :after)")
            _ = arguments.append(contentsOf: ["key": cursor.sortKey, "after": cursor.articleID])
        }
        let filter = "WHERE " + conditions.joined(separator: " AND ")
        let account = account
        return try read("read feed page") { db in
            let accountRow = try StoreTransaction(db).accountRow(account, create: false) ?? -1
            _ = arguments.append(contentsOf: ["account": accountRow])
            let rows = try Row.fetchAll(db, sql: """
                SELECT a.key, a.source, a.url, a.title, a.byline, CASE WHEN :bodies THEN COALESCE(a.body, '') ELSE '' END AS body,
                       a.topics, a.related, a.published_at, a.updated_at,
                       r.read_at, r.progress, r.saved_at,
                       (SELECT COUNT(*) FROM comment c WHERE c.article_id = a.id AND c.created_hlc IS NOT NULL
                        AND c.deleted_hlc IS NULL) AS comment_count,
                       a.sort_key
                FROM article a
                LEFT JOIN read_state r ON r.article_id = a.id AND r.account_id = :account
                \(filter)
                ORDER BY a.sort_key DESC, a.key
                LIMIT :limit
                """, arguments: arguments)
            var items: [FeedItem] = []
            var next: FeedCursor?
            for (index, row) in rows.enumerated() {
                if index == limit {
                    let last = rows[index - 1]
                    next = FeedCursor(sortKey: last[14], articleID: last[0])
                    break
                }
                let article = try Article(row: row)
                items.append(FeedItem(article: article,
                                      readState: ReadState(row: row, offset: 10, account: account, articleID: article.id),
                                      commentCount: row[13]))
            }
            return FeedPage(items: items, next: next)
        }
    }
}
