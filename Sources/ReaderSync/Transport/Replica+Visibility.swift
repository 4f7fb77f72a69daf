import Foundation
import GRDB

extension Replica {
    /// What this replica holds that replicas of `account` may receive: every shared entry, and private
    /// (read state) entries only of that account's own replicas. A server answers `GET /v1/sync/knowledge` with it.
    package func knowledge(visibleTo account: String) throws -> Knowledge {
        try read("read knowledge for \(account)") { db in try knowledge(db, visibleTo: account) }
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
