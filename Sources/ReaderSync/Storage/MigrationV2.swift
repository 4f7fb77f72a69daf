import Foundation
import GRDB

/// Schema v1 → v2, run when a v1 replica is opened: integer targets and origins, each field's winning clock in
/// its row, every article body stored once. The state it materializes is the reference rules' state of the v1
/// change log, so `dump` prints the same before and after (tested on v1 files committed as fixtures).
///
/// A v1 change whose value the v2 rules refuse (v1 accepted some from bundles: a progress of 1.5, a read time of
/// -5…) cannot be exported to any v2 replica, so it is dropped here; the count is kept in `migration_note`.
enum MigrationV2 {
    static func run(_ db: Database) throws {
        let v1Tables = ["replica", "origin", "knowledge", "change_log", "article", "comment", "read_state"]
        for index in ["article_feed", "article_source", "change_log_target", "comment_thread"] {
            try db.execute(sql: "DROP INDEX IF EXISTS \(index)")
        }
        for table in v1Tables { try db.execute(sql: "ALTER TABLE \(table) RENAME TO v1_\(table)") }
        try db.execute(sql: StoreSchema.v2Tables)
        let tx = StoreTransaction(db)

        // Origins keep their row ids, so the v1 self origin (1) stays the replica's own.
        var origins: [Int64: OriginRef] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT id, replica_id, account FROM v1_origin ORDER BY id") {
            guard let id = ReplicaID(string: row["replica_id"]) else {
                throw ReaderSyncError.storage("the v1 origin table holds an invalid replica id")
            }
            let name: String = row["account"]
            guard let accountRow = try tx.accountRow(name, create: true) else { continue }
            let rowID: Int64 = row["id"]
            try db.execute(sql: "INSERT INTO origin (id, replica_id, account_id) VALUES (?, ?, ?)",
                           arguments: [rowID, Data(id.bytes), accountRow])
            origins[rowID] = try tx.origin(row: rowID)
        }
        guard let replica = try Row.fetchOne(db, sql: "SELECT * FROM v1_replica") else {
            // A replica being created: nothing to convert.
            for table in v1Tables { try db.execute(sql: "DROP TABLE v1_\(table)") }
            return
        }
        guard let selfID = ReplicaID(string: replica["replica_id"]) else {
            throw ReaderSyncError.storage("the v1 replica row holds an invalid replica id")
        }
        guard let selfOrigin = try tx.origin(selfID, account: replica["account"], create: true) else {
            throw ReaderSyncError.storage("cannot find the replica's own origin")
        }
        try db.execute(sql: """
            INSERT INTO replica (singleton, origin_id, role, created_at, clock, last_seq) VALUES (1, ?, ?, ?, ?, ?)
            """, arguments: [selfOrigin.row, replica["role"], replica["created_at"], replica["clock"], replica["last_seq"]])
        try db.execute(sql: """
            INSERT INTO knowledge (origin_id, scope, seq, incarnation) SELECT origin_id, scope, seq, 0 FROM v1_knowledge
            """)

        // The change log, target by target, through the reference rules.
        var dropped = 0
        var current: (entity: EntityKind, key: String, account: String?)?
        var entries: [Rebuild.Entry] = []
        func flush() throws {
            guard let target = current, !entries.isEmpty else { return }
            let accountRow = try target.account.map { try tx.accountRow($0, create: true) } ?? nil
            try Rebuild.target(tx, entity: target.entity, key: target.key, accountRow: accountRow, entries: entries, insert: true)
            entries = []
        }
        let rows = try Row.fetchCursor(db, sql: """
            SELECT origin_id, seq, hlc, entity, account, key, field, value_type, value FROM v1_change_log
            ORDER BY entity, key, account, origin_id, seq
            """)
        while let row = try rows.next() {
            guard let entity = EntityKind(rawValue: UInt8(clamping: row["entity"] as Int)),
                  let origin = origins[row["origin_id"]] else { dropped += 1; continue }
            let key: String = row["key"]
            let fieldName: String = row["field"]
            let account: String? = row["account"]
            guard let field = FieldCode(name: fieldName, entity: entity),
                  let value = try? ChangeValue(typeTag: row["value_type"], databaseValue: row["value"]),
                  (try? ChangeRules.check(entity: entity, field: field, key: key, value: value)) != nil,
                  entity != .readState || account.map({ $0.utf8.elementsEqual(origin.account.utf8) }) == true else {
                dropped += 1
                continue
            }
            if current == nil || current?.entity != entity || current?.key.utf8.elementsEqual(key.utf8) != true
                || current?.account?.utf8.elementsEqual((account ?? "").utf8) == false {
                try flush()
                current = (entity, key, entity == .readState ? account : nil)
            }
            entries.append(Rebuild.Entry(origin: origin, seq: UInt64(bitPattern: row["seq"]), hlc: UInt64(bitPattern: row["hlc"]),
                                         field: field, value: value))
        }
        try flush()

        for table in v1Tables { try db.execute(sql: "DROP TABLE v1_\(table)") }
        if dropped > 0 {
            try db.execute(sql: "CREATE TABLE migration_note (singleton INTEGER PRIMARY KEY, dropped_v1_changes INTEGER NOT NULL)")
            try db.execute(sql: "INSERT INTO migration_note VALUES (1, ?)", arguments: [dropped])
        }
    }
}
