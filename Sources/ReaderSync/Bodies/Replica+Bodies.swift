import Foundation
import GRDB

extension Replica {
    // MARK: - Storage budget

    /// The storage budget stored in this replica, if any.
    public func storageBudget() throws -> StorageBudget? {
        try read("read storage budget") { db in try BodyStore.budget(db) }
    }

    /// Stores a storage budget in this replica (nil removes it). It is enforced after each sync and by
    /// ``enforceStorageBudget()-4en2o``; setting it evicts nothing by itself.
    /// - Throws: ``ReaderSyncError/invalidInput(_:)`` on a server replica: a server keeps every body, since it is
    ///   where devices fetch evicted ones back.
    public func setStorageBudget(_ budget: StorageBudget?) throws {
        if budget != nil, role == .server {
            throw ReaderSyncError.invalidInput("a server replica keeps every body (devices fetch evicted bodies from it); a storage budget is for devices")
        }
        if let budget, budget.bytes < 1 || !budget.keepUnreadFor.isFinite || budget.keepUnreadFor < 0 {
            throw ReaderSyncError.invalidInput("a storage budget needs at least 1 byte and a non-negative unread age")
        }
        try write("set storage budget") { db in try BodyStore.setBudget(db, budget) }
    }

    /// Bytes of the replica's database in use (SQLite's pages in use; free pages are reused before the file grows).
    public func storageBytes() throws -> Int64 {
        try read("measure replica") { db in try BodyStore.usedBytes(db) }
    }

    /// Evicts bodies until the replica is within its storage budget (see ``StorageBudget``), then compacts the
    /// database so the space is really returned. Without a budget it evicts nothing. Eviction records no change.
    ///
    /// An article row that loses its body shrinks in place, and SQLite does not merge half-empty pages on its
    /// own: each round evicts enough bodies to cover the excess (estimated from their sizes), commits, compacts
    /// with `VACUUM`, and measures again — usually one round, at most four.
    @discardableResult
    public func enforceStorageBudget() throws -> EvictionReport {
        let now = options.wallClock.nowMillis()
        let (budget, before) = try read("measure replica") { db in (try BodyStore.budget(db), try BodyStore.usedBytes(db)) }
        var report = EvictionReport(budget: budget, bytesBefore: before, bytesAfter: before, fileBytes: 0, evicted: 0,
                                    evictedBodyBytes: 0, stillOverBudget: false)
        guard let budget, !isReadOnly else {
            report.fileBytes = try read("measure replica") { db in try BodyStore.fileBytes(db) }
            return report
        }
        var used = before
        for _ in 0..<4 where used > budget.bytes {
            let excess = used - budget.bytes
            let round = try write("enforce storage budget") { db -> (count: Int, bytes: Int64) in
                let me = try StoreTransaction(db).replicaRow()
                let cursor = try BodyStore.candidates(db, accountRow: me.origin.accountRow, originRow: me.origin.row,
                                                      acknowledged: try BodyStore.acknowledgedSeq(db),
                                                      unreadCutoff: now - Int64((budget.keepUnreadFor * 1000).rounded()))
                var rows: [Int64] = []
                var covered: Int64 = 0
                var text: Int64 = 0
                // A body frees about its size in the row, plus its share of the search index.
                while covered < excess, let row = try cursor.next() {
                    rows.append(row[0])
                    let length: Int64 = row[1] ?? 0
                    covered += length + length / 4 + 32
                    text += length
                }
                guard !rows.isEmpty else { return (0, 0) }
                try BodyStore.evict(db, rows: rows, at: now)
                // Fold the index's deletion markers into its segments.
                try db.execute(sql: "INSERT INTO article_search (article_search) VALUES ('optimize')")
                return (rows.count, text)
            }
            if round.count == 0 { break }
            report.evicted += round.count
            report.evictedBodyBytes += round.bytes
            try compact()
            used = try storageBytes()
        }
        report.bytesAfter = used
        report.stillOverBudget = used > budget.bytes
        report.fileBytes = try read("measure replica") { db in try BodyStore.fileBytes(db) }
        return report
    }

    /// Rewrites the database compactly (`VACUUM`) and truncates the write-ahead log, so that evicted bodies'
    /// space goes back to the file system.
    func compact() throws {
        try Self.guarded("compact replica") {
            try writer.vacuum()
            if writer is DatabasePool {
                _ = try? writer.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
            }
        }
    }

    /// Evicts one article's body now, whatever the budget, unless the article is saved or its body was written
    /// here and no peer has acknowledged it yet (the only copy). Returns whether it evicted. Records no change.
    /// - Throws: ``ReaderSyncError/notFound(_:)`` for an unknown article.
    @discardableResult
    public func evictBody(of articleID: String) throws -> Bool {
        let now = options.wallClock.nowMillis()
        return try write("evict body of \(articleID)") { db in
            try requireArticle(db, articleID)
            let me = try StoreTransaction(db).replicaRow()
            let cursor = try BodyStore.candidates(db, accountRow: me.origin.accountRow, originRow: me.origin.row,
                                                  acknowledged: try BodyStore.acknowledgedSeq(db),
                                                  unreadCutoff: Int64.max, only: articleID)
            guard let row = try cursor.next() else { return false }
            try BodyStore.evict(db, rows: [row[0]], at: now)
            return true
        }
    }

    /// Notes that the reader opened an article now (the storage budget evicts least recently opened bodies
    /// first). Replica-local: records no change.
    /// - Throws: ``ReaderSyncError/notFound(_:)`` for an unknown article.
    public func recordOpened(_ articleID: String) throws {
        let now = options.wallClock.nowMillis()
        try write("record opening \(articleID)") { db in
            try requireArticle(db, articleID)
            try BodyStore.noteOpened(db, key: articleID, at: now)
        }
    }

    // MARK: - Bodies not held

    /// Ids of articles whose body this replica does not hold (evicted, or received by reference), by key.
    public func articlesWithoutBody(limit: Int = 1000) throws -> [String] {
        try articlesWithoutBody(after: "", limit: limit)
    }

    /// Ids of articles without a body whose key sorts after `after` (every id is longer than `""`), by key: the
    /// pages of ``articlesWithoutBody(limit:)``.
    func articlesWithoutBody(after: String, limit: Int) throws -> [String] {
        try read("list articles without body") { db in
            try String.fetchAll(db, sql: """
                SELECT key FROM article WHERE body IS NULL AND content_hlc IS NOT NULL AND key > ? ORDER BY key LIMIT ?
                """, arguments: [after, max(0, limit)])
        }
    }

    /// The bodies this replica holds of `ids` (unknown ids and bodies not held are left out): what a server or a
    /// peer hands to a replica that evicted them.
    public func articleBodies(_ ids: [String]) throws -> [ArticleBody] {
        try read("read article bodies") { db in
            let statement = try db.cachedStatement(sql: """
                SELECT body, body_sha256 FROM article WHERE key = ? AND body IS NOT NULL AND content_hlc IS NOT NULL
                """)
            var out: [ArticleBody] = []
            for id in ids {
                guard let row = try Row.fetchOne(statement, arguments: [id]) else { continue }
                let digest: Data = row[1]
                out.append(ArticleBody(id: id, sha256: SHA256.hexString(Array(digest)), body: row[0]))
            }
            return out
        }
    }

    /// Puts bodies back: each one whose SHA-256 matches the digest this replica holds for the article's winning
    /// version is stored; any other is refused (a stale or forged body never replaces the text). Not a change:
    /// nothing is recorded or sent.
    @discardableResult
    public func fillBodies(_ bodies: [ArticleBody]) throws -> BodyFillReport {
        try write("put bodies back") { db in
            var report = BodyFillReport()
            let lookup = try db.cachedStatement(sql: """
                SELECT id, body IS NOT NULL, body_sha256 FROM article WHERE key = ? AND content_hlc IS NOT NULL
                """)
            for body in bodies {
                guard let row = try Row.fetchOne(lookup, arguments: [body.id]) else { continue }
                if row[1] as Bool { continue }
                let held: Data? = row[2]
                let actual = SHA256.digest(utf8: body.body)
                guard let held, Array(held) == actual, SHA256.bytes(hex: body.sha256) == actual,
                      body.body.utf8.count <= ArticleContent.Limit.body, !body.body.utf8.contains(0) else {
                    report.rejected += 1
                    if report.rejectedIDs.count < 20 { report.rejectedIDs.append(body.id) }
                    continue
                }
                try BodyStore.fill(db, articleRow: row[0], body: body.body)
                report.filled += 1
            }
            return report
        }
    }

    /// Brings back, from `peer`, every body this replica lacks and the peer holds in the same version.
    /// - Parameter peer: another replica, opened in this process.
    /// - Parameter includeEvicted: also the bodies this replica evicted itself (false: only those it received by
    ///   reference). ``sync(with:progress:)-9sjtq`` passes false while a storage budget is set, so a sync does not bring
    ///   back what the budget just removed.
    @discardableResult
    public func fillBodies(from peer: Replica, includeEvicted: Bool = true) throws -> BodyFillReport {
        var report = BodyFillReport()
        var after = ""
        while true {
            let ids = try read("list articles without body") { db in
                try String.fetchAll(db, sql: """
                    SELECT key FROM article a WHERE body IS NULL AND content_hlc IS NOT NULL AND key > ?
                      AND (? OR NOT EXISTS (SELECT 1 FROM article_local l WHERE l.article_id = a.id AND l.evicted_at IS NOT NULL))
                    ORDER BY key LIMIT 500
                    """, arguments: [after, includeEvicted])
            }
            guard let last = ids.last else { break }
            after = last
            let bodies = try peer.articleBodies(ids)
            let filled = try fillBodies(bodies)
            report.filled += filled.filled
            report.rejected += filled.rejected
            report.rejectedIDs += filled.rejectedIDs.prefix(max(0, 20 - report.rejectedIDs.count))
            report.missing += ids.count - bodies.count
        }
        return report
    }

    /// The state of one article's body.
    /// - Throws: ``ReaderSyncError/notFound(_:)`` for an unknown article.
    public func bodyState(of articleID: String) throws -> BodyState {
        try read("read body state of \(articleID)") { db in try bodyState(db, articleID) }
    }

    func bodyState(_ db: Database, _ articleID: String) throws -> BodyState {
        guard let row = try Row.fetchOne(db, sql: """
            SELECT a.body IS NOT NULL, l.evicted_at FROM article a LEFT JOIN article_local l ON l.article_id = a.id
            WHERE a.key = ? AND a.content_hlc IS NOT NULL
            """, arguments: [articleID]) else {
            throw ReaderSyncError.notFound("no article with id '\(Keys.printable(articleID))'")
        }
        return BodyStore.state(bodyHeld: row[0], evictedAt: row[1])
    }
}
