import Foundation
import GRDB

// A replica's identity across restores and copies (`Schemas/merge-rules.md`, "Identity").
//
// Every Replica object draws a random incarnation and records it with the first change it writes (the
// `incarnation` table: the incarnation in force from each sequence number on). Knowledge and bundle ranges carry
// the origin's incarnation at their end. When a peer claims to hold more of this replica's own changes than it
// ever made, or a different incarnation at one of its sequence numbers, the file was restored from a backup or
// copied: this replica's later changes reused sequence numbers that others already hold for other changes. It
// then continues under a new replica id: every change it still holds of its old identity is re-issued under the
// new one (same timestamps and values), the old identity becomes an ordinary foreign origin whose changes it
// takes again from peers from sequence number 0, and nothing either history holds is lost.

extension Replica {
    /// One claim about an origin: a peer says it holds it up to `seq`, which had incarnation `incarnation`.
    struct IdentityClaim {
        var seq: UInt64
        var incarnation: UInt64
    }

    /// Why the claims show this replica's history was forked, or nil.
    func forkReason(_ tx: StoreTransaction, claims: [IdentityClaim], peer: String) throws -> String? {
        let me = try tx.replicaRow()
        for claim in claims where claim.seq > 0 {
            if claim.seq > me.lastSeq {
                return "\(peer) holds changes up to \(claim.seq) of replica \(me.origin.replica), which has made only \(me.lastSeq): this file was restored from a backup or copied"
            }
            if claim.incarnation != 0 {
                let mine = try tx.ownIncarnation(at: claim.seq)
                if mine != 0 && mine != claim.incarnation {
                    return "\(peer) holds a different change \(claim.seq) of replica \(me.origin.replica) than this file made: this file was restored from a backup or copied"
                }
            }
        }
        return nil
    }

    /// The claims `knowledge` makes about this replica's own origin.
    func claims(in knowledge: Knowledge, about origin: ReplicaID) -> [IdentityClaim] {
        ChangeScope.allCases.compactMap { scope in
            knowledge.entry(origin: origin, account: account, scope: scope).map { IdentityClaim(seq: $0.seq, incarnation: $0.incarnation) }
        }
    }

    /// Checks what a peer knows of this replica's own origin; when it shows the file was restored or copied,
    /// continues under a new identity and says so.
    @discardableResult
    func checkIdentity(against theirs: Knowledge, peer: String) throws -> IdentityChange? {
        let current = replicaID
        let reason = try read("check identity") { db in
            try forkReason(StoreTransaction(db), claims: claims(in: theirs, about: current), peer: peer)
        }
        guard let reason else { return nil }
        return try rotateIdentity(reason: reason)
    }

    /// Continues under a new replica id (see the top of this file). One transaction.
    @discardableResult
    func rotateIdentity(reason: String) throws -> IdentityChange {
        let change = try write("continue under a new identity") { db -> IdentityChange in
            let tx = StoreTransaction(db)
            let me = try tx.replicaRow()
            let old = me.origin
            let newID = ReplicaID.random()
            guard let new = try tx.origin(newID, account: old.account, create: true) else {
                throw ReaderSyncError.storage("cannot record the new identity")
            }
            try db.execute(sql: "INSERT INTO identity_history (origin_id, last_seq, replaced_at, reason) VALUES (?, ?, ?, ?)",
                           arguments: [old.row, Int64(bitPattern: me.lastSeq), options.wallClock.nowMillis(), reason])

            // The targets the old identity's retained changes decide, with all their retained changes.
            struct Target: Hashable { var entity: UInt8; var target: Int64 }
            var targets: [Target] = []
            var seen = Set<Target>()
            let rows = try Row.fetchAll(db, sql: """
                SELECT seq, hlc, entity, target, field, value_type, value FROM change_log WHERE origin_id = ? ORDER BY seq
                """, arguments: [old.row])
            for row in rows {
                let t = Target(entity: UInt8(clamping: row[2] as Int), target: row[3])
                if seen.insert(t).inserted { targets.append(t) }
            }
            var retained: [Target: (key: String, account: Int64?, entries: [Rebuild.Entry])] = [:]
            for t in targets {
                guard let entity = EntityKind(rawValue: t.entity) else { continue }
                retained[t] = try retainedEntries(tx, entity: entity, target: t.target, accountRow: old.accountRow)
            }

            // Re-issue every retained change of the old identity under the new one, in order.
            var renamed: [UInt64: UInt64] = [:]
            var seq: UInt64 = 0
            let insert = try db.cachedStatement(sql: """
                INSERT INTO change_log (origin_id, seq, hlc, entity, target, field, value_type, value)
                SELECT ?, ?, hlc, entity, target, field, value_type, value FROM change_log WHERE origin_id = ? AND seq = ?
                """)
            for row in rows {
                seq += 1
                let oldSeq = UInt64(bitPattern: row[0])
                renamed[oldSeq] = seq
                try insert.execute(arguments: [new.row, Int64(bitPattern: seq), old.row, Int64(bitPattern: oldSeq)])
            }
            try db.execute(sql: "DELETE FROM change_log WHERE origin_id = ?", arguments: [old.row])

            // Rebuild each target from its renamed entries: their write order may differ from the old one's.
            for t in targets {
                guard let entity = EntityKind(rawValue: t.entity), let info = retained[t] else { continue }
                let entries = info.entries.map { e -> Rebuild.Entry in
                    guard e.origin === old || e.origin.row == old.row, let newSeq = renamed[e.seq] else { return e }
                    return Rebuild.Entry(origin: new, seq: newSeq, hlc: e.hlc, field: e.field, value: e.value)
                }
                try Rebuild.target(tx, entity: entity, key: info.key, accountRow: info.account, entries: entries, insert: false)
            }

            // The old identity is now an ordinary origin that peers may send again from the start.
            try db.execute(sql: "DELETE FROM knowledge WHERE origin_id = ?", arguments: [old.row])
            try db.execute(sql: "UPDATE replica SET origin_id = ?, last_seq = ?", arguments: [new.row, Int64(bitPattern: seq)])
            try db.execute(sql: "DELETE FROM incarnation")
            if seq > 0 {
                try tx.useIncarnation(incarnation, from: 1)
                for scope in ChangeScope.allCases {
                    try tx.raiseKnowledge(originRow: new.row, scope: scope, to: seq, incarnation: incarnation)
                }
            }
            try checkInvariants(db)
            return IdentityChange(previous: old.replica, current: newID, reason: reason)
        }
        noteIdentity(change.current)
        return change
    }

    /// A target's retained changes (its row's winners and its extras), with their values, for a rebuild; and the
    /// target's key and, for a read state, its account.
    private func retainedEntries(_ tx: StoreTransaction, entity: EntityKind, target: Int64,
                                 accountRow: Int64) throws -> (key: String, account: Int64?, entries: [Rebuild.Entry]) {
        let db = tx.db
        var refs: [(origin: Int64, seq: UInt64)] = []
        var key = ""
        var account: Int64?
        var inRowContent: ArticleContent?
        func add(_ origin: Int64?, _ seq: Int64?) {
            if let origin, let seq { refs.append((origin, UInt64(bitPattern: seq))) }
        }
        switch entity {
        case .article:
            guard let row = try Row.fetchOne(db, sql: "SELECT key, content_origin, content_seq FROM article WHERE id = ?",
                                             arguments: [target]) else { break }
            key = row[0]
            add(row[1], row[2])
            inRowContent = try tx.articleContent(row: target)
        case .readState:
            account = accountRow
            key = try String.fetchOne(db, sql: "SELECT key FROM article WHERE id = ?", arguments: [target]) ?? ""
            if let row = try Row.fetchOne(db, sql: """
                SELECT read_origin, read_seq, saved_origin, saved_seq, progress_origin, progress_seq, reset_origin, reset_seq
                FROM read_state WHERE account_id = ? AND article_id = ?
                """, arguments: [accountRow, target]) {
                add(row[0], row[1]); add(row[2], row[3]); add(row[4], row[5]); add(row[6], row[7])
            }
            refs += try tx.extras(entity: .readState, target: target, accountRow: accountRow)
        case .comment:
            guard let row = try Row.fetchOne(db, sql: """
                SELECT key, created_origin, created_seq, body_origin, body_seq, deleted_origin, deleted_seq FROM comment WHERE id = ?
                """, arguments: [target]) else { break }
            key = row[0]
            add(row[1], row[2]); add(row[3], row[4]); add(row[5], row[6])
            refs += try tx.extras(entity: .comment, target: target, accountRow: 0)
        }
        var entries: [Rebuild.Entry] = []
        for ref in refs {
            guard let change = try tx.change(origin: ref.origin, seq: ref.seq) else { continue }
            let value: ChangeValue
            if let v = change.value {
                value = v
            } else if let inRowContent {
                value = .string(inRowContent.encoded())
            } else {
                continue
            }
            entries.append(Rebuild.Entry(origin: try tx.origin(row: ref.origin), seq: ref.seq, hlc: change.hlc,
                                         field: change.field, value: value))
        }
        return (key, account, entries)
    }
}
