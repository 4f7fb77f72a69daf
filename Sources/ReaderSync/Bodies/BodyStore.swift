import Foundation
import GRDB

/// The replica-local side of article bodies: when each article was last opened, which bodies were evicted, the
/// storage budget, and putting a body back. None of it is a change: nothing here writes the change log, the
/// knowledge or the clock.
enum BodyStore {
    // MARK: Settings

    static func setting(_ db: Database, _ name: String) throws -> DatabaseValue? {
        try DatabaseValue.fetchOne(try db.cachedStatement(sql: "SELECT value FROM setting WHERE name = ?"), arguments: [name])
    }

    static func setSetting(_ db: Database, _ name: String, _ value: (any DatabaseValueConvertible)?) throws {
        if let value {
            try db.cachedStatement(sql: "INSERT OR REPLACE INTO setting (name, value) VALUES (?, ?)").execute(arguments: [name, value])
        } else {
            try db.cachedStatement(sql: "DELETE FROM setting WHERE name = ?").execute(arguments: [name])
        }
    }

    static func budget(_ db: Database) throws -> StorageBudget? {
        guard let bytes = try setting(db, "budget_bytes").flatMap(Int64.fromDatabaseValue) else { return nil }
        let keep = try setting(db, "budget_keep_unread_ms").flatMap(Int64.fromDatabaseValue) ?? 7 * 86_400_000
        return StorageBudget(bytes: bytes, keepUnreadFor: TimeInterval(keep) / 1000)
    }

    static func setBudget(_ db: Database, _ budget: StorageBudget?) throws {
        try setSetting(db, "budget_bytes", budget?.bytes)
        try setSetting(db, "budget_keep_unread_ms", budget.map { Int64(($0.keepUnreadFor * 1000).rounded()) })
    }

    /// The highest of this replica's own sequence numbers a peer has acknowledged holding.
    static func acknowledgedSeq(_ db: Database) throws -> UInt64 {
        (try setting(db, "acknowledged_seq").flatMap(Int64.fromDatabaseValue)).map { UInt64(bitPattern: $0) } ?? 0
    }

    static func noteAcknowledged(_ db: Database, seq: UInt64) throws {
        guard seq > (try acknowledgedSeq(db)) else { return }
        try setSetting(db, "acknowledged_seq", Int64(bitPattern: seq))
    }

    // MARK: Sizes

    /// Bytes of the database's pages in use (free pages not counted).
    static func usedBytes(_ db: Database) throws -> Int64 {
        let pages = try Int64.fetchOne(db, sql: "PRAGMA page_count") ?? 0
        let free = try Int64.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0
        let size = try Int64.fetchOne(db, sql: "PRAGMA page_size") ?? 4096
        return (pages - free) * size
    }

    static func fileBytes(_ db: Database) throws -> Int64 {
        let pages = try Int64.fetchOne(db, sql: "PRAGMA page_count") ?? 0
        let size = try Int64.fetchOne(db, sql: "PRAGMA page_size") ?? 4096
        return pages * size
    }

    // MARK: Opened, evicted, filled

    static func noteOpened(_ db: Database, key: String, at millis: Int64) throws {
        try db.cachedStatement(sql: """
            INSERT INTO article_local (article_id, opened_at) SELECT id, ? FROM article WHERE key = ?
            ON CONFLICT (article_id) DO UPDATE SET opened_at = excluded.opened_at
            """).execute(arguments: [millis, key])
    }

    /// Puts a body back into its row (the caller checked it against the row's digest) and forgets the eviction.
    static func fill(_ db: Database, articleRow: Int64, body: String) throws {
        try db.cachedStatement(sql: "UPDATE article SET body = ? WHERE id = ? AND body IS NULL").execute(arguments: [body, articleRow])
        try db.cachedStatement(sql: "UPDATE article_local SET evicted_at = NULL WHERE article_id = ?").execute(arguments: [articleRow])
    }

    /// Drops the bodies of `rows`, noting when.
    static func evict(_ db: Database, rows: [Int64], at millis: Int64) throws {
        let drop = try db.cachedStatement(sql: "UPDATE article SET body = NULL WHERE id = ? AND body IS NOT NULL")
        let note = try db.cachedStatement(sql: """
            INSERT INTO article_local (article_id, evicted_at) VALUES (?, ?)
            ON CONFLICT (article_id) DO UPDATE SET evicted_at = excluded.evicted_at
            """)
        for row in rows {
            try drop.execute(arguments: [row])
            try note.execute(arguments: [row, millis])
        }
    }

    /// The state of an article's body from its row's `body IS NULL` and `article_local.evicted_at`.
    static func state(bodyHeld: Bool, evictedAt: Int64?) -> BodyState {
        bodyHeld ? .held : evictedAt != nil ? .evicted : .notReceived
    }

    /// Articles whose body may be evicted, in eviction order, with their body's size: not saved by anyone; read
    /// by this replica's account, or unread and published before `unreadCutoff`; and not a body this replica
    /// wrote that no peer has acknowledged (it may be the only copy). Read ones first, least recently opened
    /// (or read) first; then unread ones, oldest first.
    static func candidates(_ db: Database, accountRow: Int64, originRow: Int64, acknowledged: UInt64,
                           unreadCutoff: Int64, only key: String? = nil) throws -> RowCursor {
        try Row.fetchCursor(db, sql: """
            SELECT a.id, length(CAST(a.body AS BLOB)) FROM article a
            LEFT JOIN article_local l ON l.article_id = a.id
            LEFT JOIN read_state r ON r.article_id = a.id AND r.account_id = :account
            WHERE a.body IS NOT NULL AND a.content_hlc IS NOT NULL
              AND (a.content_origin != :origin OR a.content_seq <= :acked)
              AND NOT EXISTS (SELECT 1 FROM read_state s WHERE s.article_id = a.id AND s.saved_at IS NOT NULL)
              AND (r.read_at IS NOT NULL OR a.sort_key < :cutoff)
              AND (:key IS NULL OR a.key = :key)
            ORDER BY r.read_at IS NULL, COALESCE(l.opened_at, r.read_at, 0), a.sort_key, a.id
            """, arguments: ["account": accountRow, "origin": originRow, "acked": Int64(bitPattern: acknowledged),
                             "cutoff": unreadCutoff, "key": key])
    }
}
