import Foundation
import GRDB

/// What one entity a change-log entry targets: the unit the merge rules materialize.
struct MergeTarget: Hashable, Sendable {
    var entity: EntityKind
    var key: String
    /// For read state: the account it belongs to. Nil for shared entities.
    var account: String?
}

// MARK: - Value storage

extension ChangeValue {
    /// The `value_type` column: 0 null, 1 false, 2 true, 3 int, 4 double, 5 string (as in bundles).
    var typeTag: Int {
        switch self {
        case .null: return 0
        case .bool(let b): return b ? 2 : 1
        case .int: return 3
        case .double: return 4
        case .string: return 5
        }
    }

    var databaseValue: DatabaseValue {
        switch self {
        case .null: return .null
        case .bool(let b): return (b ? 1 : 0).databaseValue
        case .int(let i): return i.databaseValue
        case .double(let d): return d.databaseValue
        case .string(let s): return s.databaseValue
        }
    }

    init(typeTag: Int, databaseValue: DatabaseValue) throws {
        switch (typeTag, databaseValue.storage) {
        case (0, _): self = .null
        case (1, _): self = .bool(false)
        case (2, _): self = .bool(true)
        case (3, .int64(let i)): self = .int(i)
        case (4, .double(let d)): self = .double(d)
        case (4, .int64(let i)): self = .double(Double(i))
        case (5, .string(let s)): self = .string(s)
        default:
            throw ReaderSyncError.storage("change log holds a value of type \(typeTag) that does not match its column")
        }
    }
}

// MARK: - Recording

extension Replica {
    /// One field write of a local mutation.
    struct FieldWrite {
        var entity: EntityKind
        var key: String
        var field: String
        var value: ChangeValue
    }

    /// Records a local mutation: stamps it, appends its change-log entries and re-materializes what it touched,
    /// all inside the caller's transaction. Returns the recorded changes.
    @discardableResult
    func record(_ db: Database, _ writes: [FieldWrite]) throws -> [Change] {
        guard !writes.isEmpty else { return [] }
        guard let row = try Row.fetchOne(db, sql: "SELECT clock, last_seq FROM replica") else {
            throw ReaderSyncError.storage("replica row is missing")
        }
        var clock = HybridLogicalClock(latest: HLCTimestamp(rawValue: UInt64(bitPattern: row["clock"])))
        let hlc = try clock.tick(wallMillis: options.wallClock.nowMillis())
        var seq = UInt64(bitPattern: row["last_seq"])
        var changes: [Change] = []
        var targets = Set<MergeTarget>()
        let insert = try db.cachedStatement(sql: """
            INSERT INTO change_log (origin_id, seq, hlc, entity, account, key, field, value_type, value)
            VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        for write in writes {
            seq += 1
            let account = write.entity.scope == .private ? self.account : nil
            try insert.execute(arguments: [
                Int64(bitPattern: seq), Int64(bitPattern: hlc.rawValue), Int(write.entity.rawValue), account,
                write.key, write.field, write.value.typeTag, write.value.databaseValue,
            ])
            changes.append(Change(origin: replicaID, seq: seq, hlc: hlc, entity: write.entity,
                                  key: write.key, field: write.field, value: write.value))
            targets.insert(MergeTarget(entity: write.entity, key: write.key, account: account))
        }
        try db.execute(sql: "UPDATE replica SET clock = ?, last_seq = ?",
                       arguments: [Int64(bitPattern: clock.latest.rawValue), Int64(bitPattern: seq)])
        for scope in ChangeScope.allCases {
            try db.execute(sql: """
                INSERT INTO knowledge (origin_id, scope, seq) VALUES (1, ?, ?)
                ON CONFLICT (origin_id, scope) DO UPDATE SET seq = excluded.seq
                """, arguments: [Int(scope.rawValue), Int64(bitPattern: seq)])
        }
        for target in targets { try materialize(db, target) }
        return changes
    }

    // MARK: - Materializing

    /// Recomputes one target's row from its retained change-log entries by the merge rules, and drops the
    /// entries the rules say are superseded.
    func materialize(_ db: Database, _ target: MergeTarget) throws {
        let entries = try mergeEntries(db, target)
        switch target.entity {
        case .article:
            let (content, superseded) = MergeRules.article(entries)
            try compact(db, superseded)
            if let content {
                let text = try content.encoded()
                let sortKey: Int64 = content.publishedAtMillis ?? content.updatedAtMillis ?? 0
                try db.execute(sql: """
                    INSERT INTO article (id, source, url, title, byline, body, topics, related,
                                         published_at, updated_at, sort_key, content)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (id) DO UPDATE SET source = excluded.source, url = excluded.url,
                        title = excluded.title, byline = excluded.byline, body = excluded.body,
                        topics = excluded.topics, related = excluded.related,
                        published_at = excluded.published_at, updated_at = excluded.updated_at,
                        sort_key = excluded.sort_key, content = excluded.content
                    """, arguments: [
                        target.key, content.source, content.url, content.title, content.byline, content.body,
                        try CanonicalJSON.string(content.topics), try CanonicalJSON.string(content.related),
                        content.publishedAtMillis, content.updatedAtMillis,
                        sortKey, text,
                    ])
            }
        case .comment:
            let (state, superseded) = MergeRules.comment(entries)
            try compact(db, superseded)
            if let state {
                try db.execute(sql: """
                    INSERT INTO comment (id, article_id, parent_id, author, body, created_at, created_hlc, edited_at, deleted)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (id) DO UPDATE SET article_id = excluded.article_id, parent_id = excluded.parent_id,
                        author = excluded.author, body = excluded.body, created_at = excluded.created_at,
                        created_hlc = excluded.created_hlc, edited_at = excluded.edited_at, deleted = excluded.deleted
                    """, arguments: [
                        target.key, state.articleID, state.parentID, state.author, state.body,
                        Int64(state.createdHLC.millis), Int64(bitPattern: state.createdHLC.rawValue),
                        state.editedHLC.map { Int64($0.millis) }, state.isDeleted,
                    ])
            }
        case .readState:
            let (state, superseded) = MergeRules.readState(entries)
            try compact(db, superseded)
            if let state, let account = target.account {
                try db.execute(sql: """
                    INSERT INTO read_state (account, article_id, read_at, progress, saved_at) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (account, article_id) DO UPDATE SET read_at = excluded.read_at,
                        progress = excluded.progress, saved_at = excluded.saved_at
                    """, arguments: [account, target.key, state.readAt, state.progress, state.savedAt])
            }
        }
    }

    private func mergeEntries(_ db: Database, _ target: MergeTarget) throws -> [MergeEntry] {
        let statement = try db.cachedStatement(sql: """
            SELECT c.local_seq, c.seq, c.hlc, c.field, c.value_type, c.value, o.replica_id, o.account
            FROM change_log c JOIN origin o ON o.id = c.origin_id
            WHERE c.entity = ? AND c.key = ? AND c.account IS ?
            """)
        let rows = try Row.fetchCursor(statement, arguments: [Int(target.entity.rawValue), target.key, target.account])
        var entries: [MergeEntry] = []
        while let row = try rows.next() {
            guard let origin = ReplicaID(string: row["replica_id"]) else {
                throw ReaderSyncError.storage("origin table holds an invalid replica id")
            }
            entries.append(MergeEntry(
                localSeq: row["local_seq"], origin: origin, originAccount: row["account"],
                seq: UInt64(bitPattern: row["seq"]), hlc: HLCTimestamp(rawValue: UInt64(bitPattern: row["hlc"])),
                field: row["field"],
                value: try ChangeValue(typeTag: row["value_type"], databaseValue: row["value"])))
        }
        return entries
    }

    private func compact(_ db: Database, _ localSeqs: [Int64]) throws {
        guard !localSeqs.isEmpty else { return }
        let statement = try db.cachedStatement(sql: "DELETE FROM change_log WHERE local_seq = ?")
        for seq in Set(localSeqs) { try statement.execute(arguments: [seq]) }
    }

    // MARK: - Reading the log

    /// The retained change-log entries recorded after `localSequence`, oldest first.
    ///
    /// Entries superseded by a newer write to the same field are compacted away (see `Schemas/merge-rules.md`),
    /// so the log holds what still decides the state.
    public func changeLog(after localSequence: Int64 = 0, limit: Int = 1000) throws -> [ChangeLogEntry] {
        try read("read change log") { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT c.local_seq, c.seq, c.hlc, c.entity, c.key, c.field, c.value_type, c.value,
                       o.replica_id, o.account
                FROM change_log c JOIN origin o ON o.id = c.origin_id
                WHERE c.local_seq > ? ORDER BY c.local_seq LIMIT ?
                """, arguments: [localSequence, max(0, limit)])
            return try rows.map { row in
                guard let origin = ReplicaID(string: row["replica_id"]),
                      let entity = EntityKind(rawValue: UInt8(clamping: row["entity"] as Int)) else {
                    throw ReaderSyncError.storage("change log row \(row["local_seq"] as Int64) is corrupt")
                }
                let change = Change(origin: origin, seq: UInt64(bitPattern: row["seq"]),
                                    hlc: HLCTimestamp(rawValue: UInt64(bitPattern: row["hlc"])),
                                    entity: entity, key: row["key"], field: row["field"],
                                    value: try ChangeValue(typeTag: row["value_type"], databaseValue: row["value"]))
                return ChangeLogEntry(localSequence: row["local_seq"], change: change, originAccount: row["account"])
            }
        }
    }
}
