import Foundation
import GRDB

extension Replica {
    /// What this replica holds that replicas of `account` may receive: every shared entry, and private
    /// (read state) entries only of that account's own replicas. A server answers `GET /v1/sync/knowledge` with it.
    package func knowledge(visibleTo account: String) throws -> Knowledge {
        try read("read knowledge for \(account)") { db in try knowledge(db, visibleTo: account) }
    }
}
