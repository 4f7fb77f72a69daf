import GRDB

extension Replica {
    /// Expensive consistency checks run at the end of every apply and mutation when the package is built with
    /// `READERSYNC_INVARIANTS` (debug builds, so every test run): they read the whole change log.
    ///
    /// - No retained change lies beyond what knowledge says is held for its origin and scope (else a later
    ///   bundle could skip it as a duplicate, or a gap check would pass wrongly).
    /// - This replica's own knowledge equals its last sequence number in both scopes.
    /// - A device holds no other account's read state.
    /// - Every retained change is referenced by exactly one row (a field's winner or an extra), and every
    ///   reference names a retained change: nothing is orphaned, nothing dangles.
    func checkInvariants(_ db: Database) throws {
        #if READERSYNC_INVARIANTS
        func count(_ sql: String) throws -> Int { try Int.fetchOne(db, sql: sql) ?? 0 }
        let beyond = try count("""
            SELECT COUNT(*) FROM change_log c
            LEFT JOIN knowledge k ON k.origin_id = c.origin_id AND k.scope = (CASE WHEN c.entity = 3 THEN 1 ELSE 0 END)
            WHERE c.seq > COALESCE(k.seq, 0)
            """)
        guard beyond == 0 else {
            throw ReaderSyncError.storage("invariant: \(beyond) change-log entries lie beyond this replica's knowledge")
        }
        let own = try count("""
            SELECT COUNT(*) FROM replica r LEFT JOIN knowledge k ON k.origin_id = r.origin_id
            WHERE r.last_seq > 0 AND COALESCE(k.seq, -1) != r.last_seq
            """)
        guard own == 0 else { throw ReaderSyncError.storage("invariant: own knowledge differs from the last sequence") }
        if role == .device {
            let foreign = try count("""
                SELECT COUNT(*) FROM read_state r JOIN account a ON a.id = r.account_id WHERE a.name != '\(account)'
                """)
            guard foreign == 0 else { throw ReaderSyncError.storage("invariant: a device holds another account's read state") }
        }
        let references = """
            SELECT content_origin AS o, content_seq AS s FROM article WHERE content_origin IS NOT NULL
            UNION ALL SELECT created_origin, created_seq FROM comment WHERE created_origin IS NOT NULL
            UNION ALL SELECT body_origin, body_seq FROM comment WHERE body_origin IS NOT NULL
            UNION ALL SELECT deleted_origin, deleted_seq FROM comment WHERE deleted_origin IS NOT NULL
            UNION ALL SELECT read_origin, read_seq FROM read_state WHERE read_origin IS NOT NULL
            UNION ALL SELECT saved_origin, saved_seq FROM read_state WHERE saved_origin IS NOT NULL
            UNION ALL SELECT progress_origin, progress_seq FROM read_state WHERE progress_origin IS NOT NULL
            UNION ALL SELECT reset_origin, reset_seq FROM read_state WHERE reset_origin IS NOT NULL
            UNION ALL SELECT origin_id, seq FROM retained_extra
            """
        let referenced = try count("SELECT COUNT(*) FROM (\(references))")
        let distinct = try count("SELECT COUNT(*) FROM (SELECT DISTINCT o, s FROM (\(references)))")
        let logged = try count("SELECT COUNT(*) FROM change_log")
        let dangling = try count("""
            SELECT COUNT(*) FROM (\(references)) r LEFT JOIN change_log c ON c.origin_id = r.o AND c.seq = r.s WHERE c.seq IS NULL
            """)
        let miscounted = try count("""
            SELECT COUNT(*) FROM read_state r WHERE r.extras != (SELECT COUNT(*) FROM retained_extra x
                WHERE x.entity = 3 AND x.target = r.article_id AND x.account_id = r.account_id)
            """) + count("""
            SELECT COUNT(*) FROM comment c WHERE c.extras != (SELECT COUNT(*) FROM retained_extra x
                WHERE x.entity = 2 AND x.target = c.id)
            """)
        guard miscounted == 0 else { throw ReaderSyncError.storage("invariant: \(miscounted) rows miscount their extras") }
        guard referenced == distinct, distinct == logged, dangling == 0 else {
            throw ReaderSyncError.storage(
                "invariant: \(logged) retained changes but \(referenced) references (\(distinct) distinct, \(dangling) dangling)")
        }
        #endif
    }
}
