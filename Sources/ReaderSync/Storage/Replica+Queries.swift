import Foundation
import GRDB

extension Comment {
    init(row: Row) {
        self.init(id: row["id"], articleID: row["article_id"], parentID: row["parent_id"], author: row["author"],
                  body: row["body"], createdAt: ISO8601.date(fromMillis: row["created_at"]),
                  editedAt: (row["edited_at"] as Int64?).map(ISO8601.date(fromMillis:)),
                  isDeleted: row["deleted"])
    }

    static func fetch(_ db: Database, id: String) throws -> Comment? {
        try Row.fetchOne(db, sql: "SELECT * FROM comment WHERE id = ?", arguments: [id]).map(Comment.init(row:))
    }

    static func exists(_ db: Database, id: String) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT 1 FROM comment WHERE id = ?", arguments: [id]) ?? false
    }
}

extension Article {
    init(row: Row) throws {
        let content = try ArticleContent.decode(row["content"])
        self = content.article(id: row["id"])
    }
}

extension ReadState {
    init(row: Row?, account: String, articleID: String) {
        guard let row, let progress = row["progress"] as Double? else {
            self = .initial(account: account, articleID: articleID)
            return
        }
        self.init(account: account, articleID: articleID,
                  readAt: (row["read_at"] as Int64?).map(ISO8601.date(fromMillis:)),
                  progress: progress,
                  savedAt: (row["saved_at"] as Int64?).map(ISO8601.date(fromMillis:)))
    }
}

extension Replica {
    // MARK: - Feed

    /// The feed: articles newest first (by publication, else update time, then id), with this account's read
    /// state, filtered by `query`.
    public func feed(_ query: FeedQuery = FeedQuery()) throws -> [FeedItem] {
        try read("read feed") { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT a.id, a.content, r.read_at, r.progress, r.saved_at,
                       (SELECT COUNT(*) FROM comment c WHERE c.article_id = a.id AND c.deleted = 0) AS comment_count
                FROM article a
                LEFT JOIN read_state r ON r.article_id = a.id AND r.account = :account
                WHERE (:unread = 0 OR r.read_at IS NULL)
                  AND (:saved = 0 OR r.saved_at IS NOT NULL)
                  AND (:source IS NULL OR a.source = :source)
                  AND (:topic IS NULL OR EXISTS (SELECT 1 FROM json_each(a.topics) WHERE json_each.value = :topic))
                ORDER BY a.sort_key DESC, a.id
                LIMIT :limit
                """, arguments: [
                    "account": account, "unread": query.unreadOnly, "saved": query.savedOnly,
                    "source": query.source, "topic": query.topic, "limit": query.limit ?? -1,
                ])
            return try rows.map { row in
                let article = try Article(row: row)
                return FeedItem(article: article,
                                readState: ReadState(row: row, account: account, articleID: article.id),
                                commentCount: row["comment_count"])
            }
        }
    }

    /// One article with this account's read state and its comment thread.
    /// - Throws: ``ReaderSyncError/notFound(_:)`` for an unknown id.
    public func article(_ id: String) throws -> ArticleDetail {
        try read("read article \(id)") { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT id, content FROM article WHERE id = ?", arguments: [id]) else {
                throw ReaderSyncError.notFound("no article with id '\(id)'")
            }
            return ArticleDetail(article: try Article(row: row),
                                 readState: try readState(db, articleID: id),
                                 comments: try commentThreads(db, articleID: id))
        }
    }

    /// The comment thread of an article: top-level comments oldest first, replies under their parents.
    ///
    /// The order is the same on every replica: by creation timestamp, then id. Deleted comments stay in place
    /// (without text) so their replies keep their parent.
    public func comments(on articleID: String) throws -> [CommentThread] {
        try read("read comments of \(articleID)") { db in try commentThreads(db, articleID: articleID) }
    }

    /// One comment.
    /// - Throws: ``ReaderSyncError/notFound(_:)`` for an unknown id.
    public func comment(_ id: String) throws -> Comment {
        try read("read comment \(id)") { db in try requireComment(db, id) }
    }

    /// This account's read state of an article (the initial state if it was never touched).
    public func readState(of articleID: String) throws -> ReadState {
        try read("read state of \(articleID)") { db in try readState(db, articleID: articleID) }
    }

    private func readState(_ db: Database, articleID: String) throws -> ReadState {
        let row = try Row.fetchOne(db, sql: "SELECT * FROM read_state WHERE account = ? AND article_id = ?",
                                   arguments: [account, articleID])
        return ReadState(row: row, account: account, articleID: articleID)
    }

    private func commentThreads(_ db: Database, articleID: String) throws -> [CommentThread] {
        let comments = try Row.fetchAll(db, sql: """
            SELECT * FROM comment WHERE article_id = ? ORDER BY created_hlc, id
            """, arguments: [articleID]).map(Comment.init(row:))
        let ids = Set(comments.map(\.id))
        var children: [String: [Comment]] = [:]
        var roots: [Comment] = []
        for comment in comments {
            // A reply whose parent is not held (yet) shows at the top level rather than disappearing.
            if let parent = comment.parentID, ids.contains(parent), parent != comment.id {
                children[parent, default: []].append(comment)
            } else {
                roots.append(comment)
            }
        }
        var visited = Set<String>()
        func build(_ comment: Comment) -> CommentThread {
            visited.insert(comment.id)
            let replies = (children[comment.id] ?? []).filter { !visited.contains($0.id) }.map(build)
            return CommentThread(comment: comment, replies: replies)
        }
        return roots.map(build)
    }

    // MARK: - Status

    /// A summary of the replica: identity, counts, clock and change-log size.
    public func status() throws -> ReplicaStatus {
        try read("read status") { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM replica") else {
                throw ReaderSyncError.storage("replica row is missing")
            }
            func count(_ sql: String) throws -> Int { try Int.fetchOne(db, sql: sql) ?? 0 }
            let pageSize = try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 0
            let pages = try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0
            return ReplicaStatus(
                replicaID: replicaID, account: account, role: role, path: path,
                schemaVersion: StoreSchema.currentVersion,
                articles: try count("SELECT COUNT(*) FROM article"),
                comments: try count("SELECT COUNT(*) FROM comment WHERE deleted = 0"),
                readStates: try count("SELECT COUNT(*) FROM read_state"),
                clock: HLCTimestamp(rawValue: UInt64(bitPattern: row["clock"])),
                lastSequence: UInt64(bitPattern: row["last_seq"]),
                logEntries: try count("SELECT COUNT(*) FROM change_log"),
                logBytes: try Int.fetchOne(db, sql: """
                    SELECT COALESCE(SUM(LENGTH(key) + LENGTH(field) + COALESCE(LENGTH(value), 0) + 24), 0) FROM change_log
                    """) ?? 0,
                knownReplicas: try count("SELECT COUNT(*) FROM origin"),
                databaseBytes: pageSize * pages)
        }
    }

    /// This replica's knowledge: per origin and scope, how far it holds that origin's changes.
    public func knowledge() throws -> Knowledge {
        try read("read knowledge") { db in try knowledge(db) }
    }

    /// The knowledge held, or with `account` only what replicas of that account may receive: every shared
    /// entry, and private (read state) entries of that account's own replicas only.
    func knowledge(_ db: Database, visibleTo account: String? = nil) throws -> Knowledge {
        var entries: [Knowledge.Key: UInt64] = [:]
        for row in try Row.fetchAll(db, sql: """
            SELECT o.replica_id, k.scope, k.seq FROM knowledge k JOIN origin o ON o.id = k.origin_id
            WHERE :account IS NULL OR k.scope = 0 OR o.account = :account
            """, arguments: ["account": account]) {
            guard let origin = ReplicaID(string: row["replica_id"]),
                  let scope = ChangeScope(rawValue: UInt8(clamping: row["scope"] as Int)) else {
                throw ReaderSyncError.storage("knowledge table is corrupt")
            }
            entries[Knowledge.Key(origin: origin, scope: scope)] = UInt64(bitPattern: row["seq"])
        }
        return Knowledge(entries: entries)
    }
}

/// A summary of a replica, as `readersync status` shows it.
public struct ReplicaStatus: Sendable, Equatable, Codable {
    /// The replica's id.
    public var replicaID: ReplicaID
    /// Its account.
    public var account: String
    /// Device or server.
    public var role: ReplicaRole
    /// Its file, if any.
    public var path: String?
    /// The store schema version.
    public var schemaVersion: Int
    /// Articles held.
    public var articles: Int
    /// Visible (not deleted) comments held.
    public var comments: Int
    /// Read-state rows held.
    public var readStates: Int
    /// The hybrid logical clock's last timestamp.
    public var clock: HLCTimestamp
    /// The last sequence number this replica gave one of its own changes.
    public var lastSequence: UInt64
    /// Entries retained in the change log.
    public var logEntries: Int
    /// Approximate bytes of the retained change log.
    public var logBytes: Int
    /// Replicas this one has heard of, itself included.
    public var knownReplicas: Int
    /// Size of the database file in bytes.
    public var databaseBytes: Int
}
