import Foundation
import GRDB

extension Comment {
    /// The columns a comment query selects, in order: key, article key, parent key, author, body, created_hlc,
    /// body_hlc, deleted_hlc.
    static let columns = """
        c.key, a.key, c.parent_key, ac.name, c.body, c.created_hlc, c.body_hlc, c.deleted_hlc
        """
    static let joins = "JOIN article a ON a.id = c.article_id LEFT JOIN account ac ON ac.id = c.author_id"

    init(row: Row) {
        let created = HLCTimestamp(rawValue: UInt64(bitPattern: row[5]))
        let deleted = (row[7] as Int64?) != nil
        let edited = (row[6] as Int64?).map { HLCTimestamp(rawValue: UInt64(bitPattern: $0)) }
        self.init(id: row[0], articleID: row[1], parentID: row[2], author: row[3] ?? "", body: deleted ? "" : row[4],
                  createdAt: created.date,
                  editedAt: deleted ? nil : edited.flatMap { $0 > created ? $0.date : nil },
                  isDeleted: deleted)
    }

    static func fetch(_ db: Database, id: String) throws -> Comment? {
        try Row.fetchOne(try db.cachedStatement(sql: """
            SELECT \(columns) FROM comment c \(joins) WHERE c.key = ? AND c.created_hlc IS NOT NULL
            """), arguments: [id]).map(Comment.init(row:))
    }

    static func exists(_ db: Database, id: String) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT 1 FROM comment WHERE key = ?", arguments: [id]) ?? false
    }
}

extension Article {
    /// The columns an article query selects, in order: key, then the ten content columns.
    static let columns = "a.key, a.source, a.url, a.title, a.byline, a.body, a.topics, a.related, a.published_at, a.updated_at, a.body_sha256"

    init(row: Row) throws {
        self = try StoreTransaction.content(row, offset: 1).article(id: row[0])
    }
}

extension ReadState {
    /// From `read_at, progress, saved_at` at `offset` (all null: the initial state).
    init(row: Row, offset o: Int, account: String, articleID: String) {
        guard let progress = row[o + 1] as Double? else {
            self = .initial(account: account, articleID: articleID)
            return
        }
        self.init(account: account, articleID: articleID,
                  readAt: (row[o] as Int64?).map(ISO8601.date(fromMillis:)),
                  progress: progress,
                  savedAt: (row[o + 2] as Int64?).map(ISO8601.date(fromMillis:)))
    }
}

extension Replica {
    // MARK: - Feed

    /// The feed: articles newest first (by publication, else update time, then id), with this account's read
    /// state, filtered by `query`.
    public func feed(_ query: FeedQuery = FeedQuery()) throws -> [FeedItem] {
        try read("read feed") { db in try feed(db, query) }
    }

    func feed(_ db: Database, _ query: FeedQuery) throws -> [FeedItem] {
        let accountRow = try StoreTransaction(db).accountRow(account, create: false) ?? -1
        let rows = try Row.fetchAll(db, sql: """
            SELECT \(Article.columns), r.read_at, r.progress, r.saved_at,
                   (SELECT COUNT(*) FROM comment c WHERE c.article_id = a.id AND c.created_hlc IS NOT NULL
                    AND c.deleted_hlc IS NULL) AS comment_count
            FROM article a
            LEFT JOIN read_state r ON r.article_id = a.id AND r.account_id = :account
            WHERE a.content_hlc IS NOT NULL
              AND (:unread = 0 OR r.read_at IS NULL)
              AND (:saved = 0 OR r.saved_at IS NOT NULL)
              AND (:source IS NULL OR a.source = :source)
              AND (:topic IS NULL OR EXISTS (SELECT 1 FROM json_each(a.topics) WHERE json_each.value = :topic))
            ORDER BY a.sort_key DESC, a.key
            LIMIT :limit
            """, arguments: [
                "account": accountRow, "unread": query.unreadOnly, "saved": query.savedOnly,
                "source": query.source, "topic": query.topic, "limit": query.limit ?? -1,
            ])
        return try rows.map { row in
            let article = try Article(row: row)
            return FeedItem(article: article,
                            readState: ReadState(row: row, offset: 11, account: account, articleID: article.id),
                            commentCount: row[14])
        }
    }

    /// One article with this account's read state and its comment thread.
    /// - Throws: ``ReaderSyncError/notFound(_:)`` for an unknown id.
    public func article(_ id: String) throws -> ArticleDetail {
        try read("read article \(id)") { db in try article(db, id) }
    }

    func article(_ db: Database, _ id: String) throws -> ArticleDetail {
        guard let row = try Row.fetchOne(db, sql: """
            SELECT \(Article.columns) FROM article a WHERE a.key = ? AND a.content_hlc IS NOT NULL
            """, arguments: [id]) else {
            throw ReaderSyncError.notFound("no article with id '\(Keys.printable(id))'")
        }
        return ArticleDetail(article: try Article(row: row),
                             readState: try readState(db, articleID: id),
                             comments: try commentThreads(db, articleID: id),
                             bodyState: try bodyState(db, id))
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
        let row = try Row.fetchOne(db, sql: """
            SELECT r.read_at, r.progress, r.saved_at FROM read_state r
            JOIN article a ON a.id = r.article_id JOIN account ac ON ac.id = r.account_id
            WHERE a.key = ? AND ac.name = ?
            """, arguments: [articleID, account])
        guard let row else { return .initial(account: account, articleID: articleID) }
        return ReadState(row: row, offset: 0, account: account, articleID: articleID)
    }

    private func commentThreads(_ db: Database, articleID: String) throws -> [CommentThread] {
        let comments = try Row.fetchAll(db, sql: """
            SELECT \(Comment.columns) FROM comment c \(Comment.joins)
            WHERE a.key = ? AND c.created_hlc IS NOT NULL ORDER BY c.created_hlc, c.key
            """, arguments: [articleID]).map(Comment.init(row:))
        // A reply hangs under its parent when the parent is held, belongs to the same article and was created
        // before it (in thread order); otherwise it shows at the top level (merge-rules.md, "Comment threads").
        var position: [ByteString: Int] = [:]
        for (i, comment) in comments.enumerated() { position[ByteString(comment.id)] = i }
        var children: [ByteString: [Comment]] = [:]
        var roots: [Comment] = []
        for (i, comment) in comments.enumerated() {
            if let parent = comment.parentID.map(ByteString.init), let p = position[parent], p < i {
                children[parent, default: []].append(comment)
            } else {
                roots.append(comment)
            }
        }
        func build(_ comment: Comment) -> CommentThread {
            CommentThread(comment: comment, replies: (children[ByteString(comment.id)] ?? []).map(build))
        }
        return roots.map(build)
    }

    // MARK: - Status

    /// A summary of the replica: identity, counts, clock and change-log size.
    public func status() throws -> ReplicaStatus {
        try read("read status") { db in
            let tx = StoreTransaction(db)
            let me = try tx.replicaRow()
            func count(_ sql: String) throws -> Int { try Int.fetchOne(db, sql: sql) ?? 0 }
            let pageSize = try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 0
            let pages = try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0
            let previous = try Row.fetchAll(db, sql: """
                SELECT o.replica_id FROM identity_history h JOIN origin o ON o.id = h.origin_id ORDER BY h.id
                """).compactMap { ReplicaID(bytes: $0[0] as Data) }
            return ReplicaStatus(
                replicaID: me.origin.replica, account: account, role: role, path: path,
                schemaVersion: StoreSchema.currentVersion,
                articles: try count("SELECT COUNT(*) FROM article WHERE content_hlc IS NOT NULL"),
                comments: try count("SELECT COUNT(*) FROM comment WHERE created_hlc IS NOT NULL AND deleted_hlc IS NULL"),
                readStates: try count("SELECT COUNT(*) FROM read_state"),
                clock: me.clock,
                lastSequence: me.lastSeq,
                logEntries: try count("SELECT COUNT(*) FROM change_log"),
                logBytes: try Int.fetchOne(db, sql: """
                    SELECT COALESCE(SUM(COALESCE(LENGTH(value), 0) + 24), 0) FROM change_log
                    """) ?? 0,
                knownReplicas: try count("SELECT COUNT(*) FROM origin"),
                databaseBytes: pageSize * pages,
                previousIdentities: previous)
        }
    }

    /// This replica's knowledge: per origin and scope, how far it holds that origin's changes.
    public func knowledge() throws -> Knowledge {
        try read("read knowledge") { db in try knowledge(db) }
    }

    /// The knowledge held, or with `account` only what replicas of that account may receive.
    func knowledge(_ db: Database, visibleTo account: String? = nil) throws -> Knowledge {
        try StoreTransaction(db).knowledge(visibleTo: account)
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
    /// Identities this replica left behind, oldest first: each time it found it had been restored from a backup
    /// or copied, it continued under a new replica id.
    public var previousIdentities: [ReplicaID] = []
}
