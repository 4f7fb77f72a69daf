import GRDB

extension Replica {
    /// Expensive consistency checks run at the end of every apply when the package is built with
    /// `READERSYNC_INVARIANTS` (debug builds, so every test run): they read the whole change log.
    ///
    /// - No retained change lies beyond what knowledge says is held for its origin and scope (else a later
    ///   bundle could skip it as a duplicate, or a gap check would pass wrongly).
    /// - This replica's own knowledge equals its last sequence number in both scopes.
    /// - A device holds no other account's read state.
    func checkInvariants(_ db: Database) throws {
        #if READERSYNC_INVARIANTS
        let beyond = try Int.fetchOne(db, sql: """
            SELECT COUNT(*) FROM change_log c
            LEFT JOIN knowledge k ON k.origin_id = c.origin_id AND k.scope = (CASE WHEN c.entity = 3 THEN 1 ELSE 0 END)
            WHERE c.seq > COALESCE(k.seq, 0)
            """) ?? 0
        guard beyond == 0 else {
            throw ReaderSyncError.storage("invariant: \(beyond) change-log entries lie beyond this replica's knowledge")
        }
        let own = try Int.fetchOne(db, sql: """
            SELECT COUNT(*) FROM knowledge k, replica r WHERE k.origin_id = 1 AND k.seq != r.last_seq
            """) ?? 0
        guard own == 0 else { throw ReaderSyncError.storage("invariant: own knowledge differs from the last sequence") }
        if role == .device {
            let foreign = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM read_state WHERE account != ?", arguments: [account]) ?? 0
            guard foreign == 0 else { throw ReaderSyncError.storage("invariant: a device holds another account's read state") }
        }
        #endif
    }
}
