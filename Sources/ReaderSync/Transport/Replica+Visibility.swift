import Foundation
import GRDB

extension Replica {
    /// What this replica holds that replicas of `account` may receive: every shared entry, and private
    /// (read state) entries only of that account's own replicas. A server answers `GET /v1/sync/knowledge` with it.
    package func knowledge(visibleTo account: String) throws -> Knowledge {
        try read("read knowledge for \(account)") { db in
            var entries: [Knowledge.Key: UInt64] = [:]
            for row in try Row.fetchAll(db, sql: """
                SELECT o.replica_id, k.scope, k.seq FROM knowledge k JOIN origin o ON o.id = k.origin_id
                WHERE k.scope = 0 OR o.account = ?
                """, arguments: [account]) {
                guard let origin = ReplicaID(string: row["replica_id"]),
                      let scope = ChangeScope(rawValue: UInt8(clamping: row["scope"] as Int)) else {
                    throw ReaderSyncError.storage("knowledge table is corrupt")
                }
                entries[Knowledge.Key(origin: origin, scope: scope)] = UInt64(bitPattern: row["seq"])
            }
            return Knowledge(entries: entries)
        }
    }

    /// The account of every replica this one has heard of, itself included.
    func originAccounts() throws -> [ReplicaID: String] {
        try read("read origins") { db in
            var accounts: [ReplicaID: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT replica_id, account FROM origin") {
                guard let id = ReplicaID(string: row["replica_id"]) else {
                    throw ReaderSyncError.storage("origin table holds an invalid replica id")
                }
                accounts[id] = row["account"]
            }
            return accounts
        }
    }
}
