public import Foundation
import GRDB

/// Which articles a search considers, and how it marks matches.
public struct SearchOptions: Sendable, Equatable {
    /// Only articles not marked read.
    public var unreadOnly: Bool
    /// Only saved articles.
    public var savedOnly: Bool
    /// Only articles from this source (exact name).
    public var source: String?
    /// At most this many hits (1…1000). Default 20.
    public var limit: Int
    /// Put around each matched term in ``SearchHit/snippet``. Default `[` and `]`.
    public var highlight: (open: String, close: String)

    /// Creates options; the default searches every article and returns the 20 best hits.
    public init(unreadOnly: Bool = false, savedOnly: Bool = false, source: String? = nil, limit: Int = 20,
                highlight: (open: String, close: String) = ("[", "]")) {
        self.unreadOnly = unreadOnly
        self.savedOnly = savedOnly
        self.source = source
        self.limit = limit
        self.highlight = highlight
    }

    /// Whether two option values ask for the same search.
    public static func == (a: SearchOptions, b: SearchOptions) -> Bool {
        a.unreadOnly == b.unreadOnly && a.savedOnly == b.savedOnly && a.source == b.source && a.limit == b.limit
            && a.highlight.open == b.highlight.open && a.highlight.close == b.highlight.close
    }
}

/// One article a search found, best first.
public struct SearchHit: Sendable, Equatable, Identifiable {
    /// The article's id.
    public var id: String
    /// The headline.
    public var title: String
    /// The publisher.
    public var source: String
    /// The author line, if any.
    public var byline: String?
    /// When the source published it, if known.
    public var publishedAt: Date?
    /// A short excerpt around the best match, matched terms marked with ``SearchOptions/highlight``; from the
    /// title, byline or source when the match is there or the body is not held.
    public var snippet: String
    /// The bm25 relevance (higher is better; comparable within one search only).
    public var score: Double
    /// This replica's account's read state of the article.
    public var readState: ReadState
    /// Whether the body is held; a hit whose body was evicted was found by its title, byline or source.
    public var bodyState: BodyState
}

extension Replica {
    /// Weights of the indexed columns in the ranking: a match in the title counts most.
    static let searchWeights = (title: 10.0, byline: 3.0, source: 3.0, body: 1.0)

    /// Searches the articles this replica holds: full-text over title, byline, source and body, ranked by bm25
    /// (title matches weigh most), with this account's read state of each hit. Case and accents are folded.
    ///
    /// The query syntax: words (all must match), `"phrases"`, `prefix*`, `OR`, `AND`, `NOT` in capitals, and
    /// parentheses (see `README.md`, "Search"). An evicted body is not searched; its article is still found by
    /// title, byline and source.
    /// - Throws: ``ReaderSyncError/invalidInput(_:)`` with one line naming what is wrong with the query.
    public func search(_ query: String, options: SearchOptions = SearchOptions()) throws -> [SearchHit] {
        let parsed = try SearchQuery(query)
        guard (1...1000).contains(options.limit) else {
            throw ReaderSyncError.invalidInput("a search returns 1 to 1000 hits; \(options.limit) was asked")
        }
        let w = Self.searchWeights
        let account = account
        return try read("search") { db in
            let accountRow = try StoreTransaction(db).accountRow(account, create: false) ?? -1
            let rows: [Row]
            do {
                rows = try Row.fetchAll(db, sql: """
                    SELECT a.key, a.title, a.source, a.byline, a.published_at, a.body IS NOT NULL, l.evicted_at,
                           snippet(article_search, -1, :open, :close, '…', 16) AS snippet,
                           bm25(article_search, \(w.title), \(w.byline), \(w.source), \(w.body)) AS rank,
                           r.read_at, r.progress, r.saved_at
                    FROM article_search
                    JOIN article a ON a.id = article_search.rowid
                    LEFT JOIN article_local l ON l.article_id = a.id
                    LEFT JOIN read_state r ON r.article_id = a.id AND r.account_id = :account
                    WHERE article_search MATCH :query AND a.content_hlc IS NOT NULL
                      AND (:unread = 0 OR r.read_at IS NULL)
                      AND (:saved = 0 OR r.saved_at IS NOT NULL)
                      AND (:source IS NULL OR a.source = :source)
                    ORDER BY rank, a.sort_key DESC, a.key
                    LIMIT :limit
                    """, arguments: [
                        "open": options.highlight.open, "close": options.highlight.close, "account": accountRow,
                        "query": parsed.expression, "unread": options.unreadOnly, "saved": options.savedOnly,
                        "source": options.source, "limit": options.limit,
                    ])
            } catch let error as DatabaseError where error.resultCode == .SQLITE_ERROR {
                // The query is checked and every term quoted, so this is not expected; still, one line, no SQL.
                throw ReaderSyncError.invalidInput("invalid search query: the search index could not run '\(query)'")
            }
            return rows.map { row in
                let id: String = row[0]
                return SearchHit(id: id, title: row[1], source: row[2], byline: row[3],
                                 publishedAt: (row[4] as Int64?).map(ISO8601.date(fromMillis:)),
                                 snippet: row[7] ?? "", score: -(row[8] as Double? ?? 0),
                                 readState: ReadState(row: row, offset: 9, account: account, articleID: id),
                                 bodyState: BodyStore.state(bodyHeld: row[5], evictedAt: row[6]))
            }
        }
    }

    /// The size of the full-text index in bytes (its pages), for the benchmark and `status`.
    public func searchIndexBytes() throws -> Int64 {
        try read("measure search index") { db in
            let page = try Int64.fetchOne(db, sql: "PRAGMA page_size") ?? 4096
            // dbstat is not built into every SQLite; count the index's data blocks instead.
            let bytes = try Int64.fetchOne(db, sql: """
                SELECT COALESCE(SUM(length(block)), 0) FROM article_search_data
                """) ?? 0
            let docsize = try Int64.fetchOne(db, sql: "SELECT COALESCE(SUM(length(sz)) + COUNT(*) * 8, 0) FROM article_search_docsize") ?? 0
            return max(bytes + docsize, page)
        }
    }
}
