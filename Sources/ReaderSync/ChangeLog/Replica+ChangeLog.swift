import Foundation
import GRDB

// MARK: - Recording local mutations

extension Replica {
    /// One field write of a local mutation.
    struct FieldWrite {
        var entity: EntityKind
        var key: String
        var field: FieldCode
        var value: ChangeValue
        /// The value already checked and parsed by the caller (an article's content), or nil to check it here.
        var parsed: ChangeRules.Parsed? = nil
    }

    /// Records a local mutation inside the caller's transaction: stamps it after the current winner of every
    /// field it writes (so the user's latest action wins even over a change stamped ahead by a device whose clock
    /// was wrong), gives it this replica's next sequence numbers, and merges it through the same path as received
    /// bundles. Returns the recorded changes.
    @discardableResult
    func record(_ db: Database, _ writes: [FieldWrite]) throws -> [Change] {
        guard !writes.isEmpty else { return [] }
        let tx = StoreTransaction(db)
        let me = try tx.replicaRow()
        noteIdentity(me.origin.replica)
        let wall = options.wallClock.nowMillis()
        var clock = HybridLogicalClock(latest: me.clock)
        var stamp = clock.tick(wallMillis: wall, bounds: options.clockBounds)
        for write in writes {
            if let winner = try fieldClock(tx, write, account: me.origin.accountRow), winner >= stamp {
                stamp = winner.successor
            }
        }
        clock.follow(stamp, wallMillis: wall, bounds: options.clockBounds)
        try tx.useIncarnation(incarnation, from: me.lastSeq + 1)

        var keys = BundleKeyTable()
        var incoming: [IncomingChange] = []
        var changes: [Change] = []
        var seq = me.lastSeq
        for write in writes {
            seq += 1
            let parsed: ChangeRules.Parsed
            if let checked = write.parsed {
                parsed = checked
            } else {
                do {
                    parsed = try ChangeRules.check(entity: write.entity, field: write.field, key: write.key, value: write.value)
                } catch {
                    throw ReaderSyncError.invalidInput(error.message)
                }
            }
            incoming.append(IncomingChange(origin: me.origin, seq: seq, hlc: stamp.rawValue, entity: write.entity,
                                           field: write.field, keyID: keys.intern(write.key).id, value: write.value,
                                           parsed: parsed))
            changes.append(Change(origin: me.origin.replica, account: me.origin.account, seq: seq, hlc: stamp,
                                  entity: write.entity, key: write.key, field: write.field.name, value: write.value))
        }
        _ = try Merger(tx).merge(incoming, keys: keys)
        try tx.setClock(clock.latest)
        try tx.setLastSeq(seq)
        for scope in ChangeScope.allCases {
            try tx.raiseKnowledge(originRow: me.origin.row, scope: scope, to: seq, incarnation: incarnation)
        }
        try checkInvariants(db)
        return changes
    }

    /// The timestamp of the current winner of the field `write` writes (for progress: the latest of its
    /// positions and reset), or nil.
    private func fieldClock(_ tx: StoreTransaction, _ write: FieldWrite, account: Int64) throws -> HLCTimestamp? {
        let db = tx.db
        let value: Int64?
        switch write.field {
        case .content:
            value = try Int64.fetchOne(try db.cachedStatement(sql: "SELECT content_hlc FROM article WHERE key = ?"),
                                       arguments: [write.key])
        case .created:
            value = nil
        case .body, .deleted:
            value = try Int64.fetchOne(try db.cachedStatement(sql: """
                SELECT MAX(COALESCE(body_hlc, 0), COALESCE(deleted_hlc, 0)) FROM comment WHERE key = ?
                """), arguments: [write.key])
        case .read, .saved:
            let column = write.field == .read ? "read_hlc" : "saved_hlc"
            value = try Int64.fetchOne(try db.cachedStatement(sql: """
                SELECT r.\(column) FROM read_state r JOIN article a ON a.id = r.article_id WHERE a.key = ? AND r.account_id = ?
                """), arguments: [write.key, account])
        case .progress:
            value = try Int64.fetchOne(try db.cachedStatement(sql: """
                SELECT MAX(COALESCE(r.progress_hlc, 0), COALESCE(r.reset_hlc, 0),
                           COALESCE((SELECT MAX(c.hlc) FROM retained_extra x JOIN change_log c
                                     ON c.origin_id = x.origin_id AND c.seq = x.seq
                                     WHERE x.entity = 3 AND x.target = r.article_id AND x.account_id = r.account_id), 0))
                FROM read_state r JOIN article a ON a.id = r.article_id WHERE a.key = ? AND r.account_id = ?
                """), arguments: [write.key, account])
        }
        return value.flatMap { $0 > 0 ? HLCTimestamp(rawValue: UInt64(bitPattern: $0)) : nil }
    }

    // MARK: - Reading the log

    /// The retained change-log entries in write order (hybrid timestamp, origin, sequence number), after the entry
    /// whose ``ChangeLogEntry/cursor`` is `after` (from the start when nil), at most `limit` of them.
    ///
    /// Entries superseded by a newer write to the same field are compacted away (see `Schemas/merge-rules.md`),
    /// so the log holds what still decides the state.
    /// - Throws: ``ReaderSyncError/invalidInput(_:)`` for a cursor this replica did not hand out.
    public func changeLog(after cursor: String? = nil, limit: Int = 1000) throws -> [ChangeLogEntry] {
        var position: (hlc: Int64, origin: Int64, seq: Int64) = (Int64.min, Int64.min, Int64.min)
        if let cursor {
            let parts = cursor.split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count == 3, let hlc = UInt64(parts[0]), let origin = Int64(parts[1]), let seq = UInt64(parts[2]) else {
                throw ReaderSyncError.invalidInput("'\(Keys.printable(cursor))' is not a change-log cursor (it looks like HLC-ORIGIN-SEQ)")
            }
            position = (Int64(bitPattern: hlc), origin, Int64(bitPattern: seq))
        }
        return try read("read change log") { db in
            let tx = StoreTransaction(db)
            let rows = try Row.fetchAll(db, sql: """
                SELECT c.origin_id, c.seq, c.hlc, c.entity, c.field, c.value_type, c.value,
                       CASE c.entity WHEN 2 THEN m.key ELSE a.key END AS key,
                       a.source, a.url, a.title, a.byline, a.body, a.topics, a.related, a.published_at, a.updated_at,
                       a.body_sha256
                FROM change_log c
                LEFT JOIN article a ON c.entity != 2 AND a.id = c.target
                LEFT JOIN comment m ON c.entity = 2 AND m.id = c.target
                WHERE (c.hlc, c.origin_id, c.seq) > (?, ?, ?)
                ORDER BY c.hlc, c.origin_id, c.seq LIMIT ?
                """, arguments: [position.hlc, position.origin, position.seq, max(0, limit)])
            return try rows.map { row in
                let originRow: Int64 = row[0]
                let origin = try tx.origin(row: originRow)
                guard let entity = EntityKind(rawValue: UInt8(clamping: row[3] as Int)),
                      let field = FieldCode(rawValue: UInt8(clamping: row[4] as Int)), let key = row[7] as String? else {
                    throw ReaderSyncError.storage("change log entry \(originRow)/\(row[1] as Int64) is corrupt")
                }
                let type: Int = row[5]
                let value: ChangeValue = type == StoreTransaction.valueInRow
                    ? .string(try StoreTransaction.content(row, offset: 8).encoded())
                    : try ChangeValue(typeTag: type, databaseValue: row[6])
                let seq = UInt64(bitPattern: row[1])
                let hlc = UInt64(bitPattern: row[2])
                let change = Change(origin: origin.replica, account: origin.account, seq: seq, hlc: HLCTimestamp(rawValue: hlc),
                                    entity: entity, key: key, field: field.name, value: value)
                return ChangeLogEntry(change: change, cursor: "\(hlc)-\(originRow)-\(seq)")
            }
        }
    }
}
