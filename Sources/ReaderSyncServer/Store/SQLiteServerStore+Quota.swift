import Foundation
import GRDB
import ReaderSync

/// The per-minute push quota, kept in the store (`server_push_quota`) so that it holds across every server process
/// sharing the store.
///
/// A push first *reserves* what it may use, in one write transaction (SQLite serializes these across processes):
/// rows older than the window are dropped, the account's rows in the window are summed, and a row for this push is
/// inserted with the smaller of what is left (maybe nothing) and ``PushLimits/maxChangesPerPush``. The apply then counts new changes
/// and refuses the push as soon as it would go past its reservation. Afterwards the row is set to what was
/// actually counted (0, deleted, when the push failed). So concurrent pushes of one account, from any number of
/// processes, never take more than the limit together; a reservation left by a crashed process expires with the
/// window.
extension SQLiteServerStore {
    /// A row of `server_push_quota` held by a push in flight.
    struct QuotaReservation: Sendable {
        /// The row; nil for a reservation of nothing.
        var id: Int64?
        /// The most new changes the push may apply.
        var changes: Int
    }

    /// Reserves what is left of this minute's budget for a push of `account` (at most a whole push). nil when there
    /// is no per-minute limit. Nothing left is a reservation of 0: the push still runs, so a push that carries
    /// nothing new (a retry whose answer was lost) succeeds, and its first new change refuses it.
    func reserveQuota(for account: String, limits: PushLimits) async throws -> QuotaReservation? {
        guard let perMinute = limits.maxChangesPerMinute else { return nil }
        let now = wallClock.nowMillis()
        return try await run("reserve the push quota of \(account)", write: true) { db in
            try db.execute(sql: "DELETE FROM server_push_quota WHERE at <= ?", arguments: [now - PushLimits.windowMillis])
            let used = try Int.fetchOne(db, sql: "SELECT COALESCE(SUM(changes), 0) FROM server_push_quota WHERE account = ?",
                                        arguments: [account]) ?? 0
            let amount = max(0, min(perMinute - used, limits.maxChangesPerPush ?? Int.max))
            guard amount > 0 else { return QuotaReservation(id: nil, changes: 0) }
            try db.execute(sql: "INSERT INTO server_push_quota (account, at, changes) VALUES (?, ?, ?)",
                           arguments: [account, now, amount])
            return QuotaReservation(id: db.lastInsertedRowID, changes: amount)
        }
    }

    /// Sets a reservation to what the push counted (deleting it when that is 0).
    func settleQuota(_ reservation: QuotaReservation?, counted: Int) async throws {
        guard let id = reservation?.id else { return }
        try await run("settle the push quota", write: true) { db in
            if counted == 0 {
                try db.execute(sql: "DELETE FROM server_push_quota WHERE id = ?", arguments: [id])
            } else {
                try db.execute(sql: "UPDATE server_push_quota SET changes = ? WHERE id = ?", arguments: [counted, id])
            }
        }
    }

    /// The error for a push that went past its reservation of `budget` changes, with when a whole push fits again.
    func rateLimitedError(for account: String, limits: PushLimits, budget: Int) async throws -> ServerStoreError {
        let now = wallClock.nowMillis()
        return try await run("read the push quota of \(account)") { db in
            try Self.rateLimited(db, account: account, limits: limits, now: now, budget: budget)
        }
    }

    /// ``ServerStoreError/Kind/rateLimited`` for `account`: retry once enough of the window's rows have expired for
    /// a whole push (``PushLimits/maxChangesPerPush``, or the whole minute's limit if smaller) to fit.
    private static func rateLimited(_ db: Database, account: String, limits: PushLimits, now: Int64,
                                    budget: Int) throws -> ServerStoreError {
        let perMinute = limits.maxChangesPerMinute ?? Int.max
        let needed = min(limits.maxChangesPerPush ?? perMinute, perMinute)
        let rows = try Row.fetchAll(db, sql: """
            SELECT at, changes FROM server_push_quota WHERE account = ? AND at > ? ORDER BY at
            """, arguments: [account, now - PushLimits.windowMillis])
        var used = rows.reduce(0) { $0 + ($1["changes"] as Int) }
        let message = budget > 0
            ? "account \(account) has pushed \(perMinute - budget) of its \(perMinute) new changes per minute; this push carries more than the \(budget) left"
            : "account \(account) has pushed its limit of \(perMinute) new changes in the last minute"
        var fitsAt = now + PushLimits.windowMillis
        for row in rows {
            if used + needed <= perMinute { break }
            used -= row["changes"] as Int
            fitsAt = (row["at"] as Int64) + PushLimits.windowMillis
        }
        let seconds = Int(max(1, (fitsAt - now + 999) / 1000))
        return ServerStoreError(.rateLimited, message, retryAfterSeconds: seconds)
    }
}

/// Counts the new changes of one push as the apply screens them, and enforces the per-push limits: throws
/// ``ServerStoreError`` (``ServerStoreError/Kind/tooManyChanges``, ``ServerStoreError/Kind/commentTooLong``, or
/// ``ServerStoreError/Kind/rateLimited`` past the quota reservation), which rolls the whole apply back.
final class PushCounter: @unchecked Sendable {
    private let limits: PushLimits
    private let budget: Int?
    private let lock = NSLock()
    private var count = 0

    init(limits: PushLimits, budget: Int?) {
        self.limits = limits
        self.budget = budget
    }

    /// New changes counted so far.
    var counted: Int { lock.withLock { count } }

    /// The most new changes one push may carry: the per-push limit, or the per-minute one if it is smaller (a push
    /// over that could never fit).
    private var perPush: Int? {
        switch (limits.maxChangesPerPush, limits.maxChangesPerMinute) {
        case let (push?, minute?): return min(push, minute)
        case let (push, minute): return push ?? minute
        }
    }

    func count(_ change: Change) throws {
        let count = lock.withLock { self.count += 1; return self.count }
        if let max = perPush, count > max {
            throw ServerStoreError(.tooManyChanges,
                                   "a push may carry at most \(max) new changes, this one carries more; push in pages of at most \(max)")
        }
        if let budget, count > budget {
            throw ServerStoreError(.rateLimited, "over this minute's quota")
        }
        if let max = limits.maxCommentLength, change.entity == .comment, change.field == ChangeField.commentBody,
           let text = change.value.stringValue, text.count > max {
            throw ServerStoreError(.commentTooLong,
                                   "comment \(change.key) is \(text.count) characters long; this server accepts comments of at most \(max) characters",
                                   commentID: change.key)
        }
    }
}
