import Foundation

/// An origin as the merge path sees it: its row in this replica, its replica id (as two halves, so write order
/// compares two integers) and its account.
final class OriginRef: Sendable {
    /// The `origin` table row.
    let row: Int64
    let replica: ReplicaID
    let high: UInt64
    let low: UInt64
    let account: String
    /// The `account` table row of ``account``.
    let accountRow: Int64

    init(row: Int64, replica: ReplicaID, account: String, accountRow: Int64) {
        self.row = row
        self.replica = replica
        (high, low) = replica.halves
        self.account = account
        self.accountRow = accountRow
    }
}

/// Where a change sits in write order: `(hlc, origin replica id, origin account, seq)`, compared byte for byte.
struct Stamp: Sendable {
    let hlc: UInt64
    let origin: OriginRef
    let seq: UInt64

    /// Whether `self` comes before `other` in write order.
    @inline(__always)
    func precedes(_ other: Stamp) -> Bool {
        if hlc != other.hlc { return hlc < other.hlc }
        if origin !== other.origin {
            if origin.high != other.origin.high { return origin.high < other.origin.high }
            if origin.low != other.origin.low { return origin.low < other.origin.low }
            if origin.account != other.origin.account || !origin.account.utf8.elementsEqual(other.origin.account.utf8) {
                return origin.account.utf8.lexicographicallyPrecedes(other.origin.account.utf8)
            }
        }
        return seq < other.seq
    }
}

/// A retained entry held by a slot of a target: its stamp, and whether it is already in the change log
/// (`incoming == -1`) or is one of the changes being merged (their index).
struct Held: Sendable {
    var stamp: Stamp
    var incoming: Int32

    static func existing(_ stamp: Stamp) -> Held { Held(stamp: stamp, incoming: -1) }
}

/// What merging decided beyond the new states: which log entries are superseded (to delete) and which incoming
/// changes survive (to insert).
struct MergeOutcome {
    /// Existing entries superseded: (origin row, seq).
    var deletes: [(origin: Int64, seq: UInt64)] = []
    /// One flag per incoming change: still retained after the merge.
    var survives: [Bool]

    init(incoming: Int) { survives = [Bool](repeating: true, count: incoming) }

    /// Drops a retained entry: superseded.
    @inline(__always)
    mutating func displace(_ held: Held) {
        if held.incoming < 0 {
            deletes.append((held.stamp.origin.row, held.stamp.seq))
        } else {
            survives[Int(held.incoming)] = false
        }
    }
}

// MARK: - Records: the merge state of one target, as a row stores it (each field's winner and its clock)

/// An article: the winning content version.
struct ArticleRecord {
    var row: Int64?
    var winner: Held?
    /// `updatedAt` of the winning version.
    var updatedAt: Int64?
    /// The winning content, when a merged change brought it (to be written to the row).
    var newContent: ArticleContent?
    var changed = false
}

/// One account's read state of one article.
struct ReadStateRecord {
    var exists = false
    var read: (held: Held, value: Int64?)?
    var saved: (held: Held, value: Int64?)?
    var reset: Held?
    /// Progress writes after the latest reset that no later write reaches: in write order, values strictly
    /// decreasing, so the first is the furthest position (the materialized progress).
    var frontier: [(held: Held, value: Double)] = []
    /// Frontier entries beyond the first kept in `retained_extra`, as loaded.
    var storedExtras = 0
    var extrasLoaded = true
    var frontierChanged = false
    var changed = false

    var progress: Double { frontier.first?.value ?? 0 }
}

/// A comment whose id is bound to an account (`alice:…`).
struct CommentRecord {
    var row: Int64?
    var creation: (held: Held, record: CommentCreation)?
    var body: (held: Held, value: String)?
    var deleted: Held?
    var changed = false

    var isVisible: Bool { creation != nil }
}

/// The incremental merge rules: each function merges one incoming change into a target's record, recording in
/// `outcome` what it superseded. They implement the same table as ``MergeRules`` (the reference) without
/// reading the target's history: a row keeps each field's winner and its clock, so a received change is compared
/// with the current winner in memory. The property tests run both on the same random histories.
enum MergeEngine {
    // MARK: Last writer wins

    @inline(__always)
    static func lastWriterWins<V>(_ slot: inout (held: Held, value: V)?, _ held: Held, _ value: V,
                                  _ outcome: inout MergeOutcome) -> Bool {
        if let current = slot {
            guard current.held.stamp.precedes(held.stamp) else {
                outcome.displace(held)
                return false
            }
            outcome.displace(current.held)
        }
        slot = (held, value)
        return true
    }

    // MARK: Article

    /// The version with the greatest `(updatedAt, write order)` wins; a missing `updatedAt` is the earliest.
    static func mergeContent(_ record: inout ArticleRecord, _ held: Held, _ content: ArticleContent,
                             _ outcome: inout MergeOutcome) {
        if let current = record.winner {
            let a = content.updatedAtMillis ?? Int64.min
            let b = record.updatedAt ?? Int64.min
            guard a > b || (a == b && current.stamp.precedes(held.stamp)) else {
                outcome.displace(held)
                return
            }
            outcome.displace(current)
        }
        record.winner = held
        record.updatedAt = content.updatedAtMillis
        record.newContent = content
        record.changed = true
    }

    // MARK: Read state

    static func mergeRead(_ record: inout ReadStateRecord, _ held: Held, _ value: Int64?, _ outcome: inout MergeOutcome) {
        if lastWriterWins(&record.read, held, value, &outcome) { record.changed = true }
    }

    static func mergeSaved(_ record: inout ReadStateRecord, _ held: Held, _ value: Int64?, _ outcome: inout MergeOutcome) {
        if lastWriterWins(&record.saved, held, value, &outcome) { record.changed = true }
    }

    /// A progress write: dropped when a later reset removes it or a later write reaches as far; otherwise it joins
    /// the frontier and removes every earlier write it reaches. The caller loads the stored frontier first
    /// (``ReadStateRecord/extrasLoaded``).
    static func mergeProgress(_ record: inout ReadStateRecord, _ held: Held, _ value: Double, _ outcome: inout MergeOutcome) {
        precondition(record.extrasLoaded, "the progress frontier must be loaded before merging progress")
        if let reset = record.reset, held.stamp.precedes(reset.stamp) {
            outcome.displace(held)
            return
        }
        if record.frontier.contains(where: { held.stamp.precedes($0.held.stamp) && $0.value >= value }) {
            outcome.displace(held)
            return
        }
        var kept: [(held: Held, value: Double)] = []
        kept.reserveCapacity(record.frontier.count + 1)
        var inserted = false
        for entry in record.frontier {
            if entry.held.stamp.precedes(held.stamp) {
                if entry.value <= value { outcome.displace(entry.held); continue }
                kept.append(entry)
            } else {
                if !inserted { kept.append((held, value)); inserted = true }
                kept.append(entry)
            }
        }
        if !inserted { kept.append((held, value)) }
        record.frontier = kept
        record.frontierChanged = true
        record.changed = true
    }

    /// A reset (a null progress, written by "mark unread"): the latest reset wins and removes every progress
    /// write before it.
    static func mergeReset(_ record: inout ReadStateRecord, _ held: Held, _ outcome: inout MergeOutcome) {
        precondition(record.extrasLoaded, "the progress frontier must be loaded before merging a reset")
        if let current = record.reset {
            guard current.stamp.precedes(held.stamp) else {
                outcome.displace(held)
                return
            }
            outcome.displace(current)
        }
        record.reset = held
        let before = record.frontier.count
        record.frontier.removeAll { entry in
            if entry.held.stamp.precedes(held.stamp) { outcome.displace(entry.held); return true }
            return false
        }
        if record.frontier.count != before { record.frontierChanged = true }
        record.changed = true
    }

    // MARK: Comment (id bound to an account)

    /// A change to a comment whose id is bound to `bound`: anything from another account is superseded at once;
    /// the earliest creation wins; the text is last-writer-wins; the earliest deletion is kept and erases the text.
    static func mergeComment(_ record: inout CommentRecord, bound: String, _ held: Held, field: FieldCode,
                             value: ChangeValue, creation: CommentCreation?, _ outcome: inout MergeOutcome) {
        guard held.stamp.origin.account == bound && held.stamp.origin.account.utf8.elementsEqual(bound.utf8) else {
            outcome.displace(held)
            return
        }
        switch field {
        case .created:
            guard let creation else { outcome.displace(held); return }
            if let current = record.creation {
                guard held.stamp.precedes(current.held.stamp) else {
                    outcome.displace(held)
                    return
                }
                outcome.displace(current.held)
            }
            record.creation = (held, creation)
            record.changed = true
        case .body:
            guard record.deleted == nil, case .string(let text) = value else {
                outcome.displace(held)
                return
            }
            if lastWriterWins(&record.body, held, text, &outcome) { record.changed = true }
        case .deleted:
            if let current = record.deleted {
                guard held.stamp.precedes(current.stamp) else {
                    outcome.displace(held)
                    return
                }
                outcome.displace(current)
            }
            record.deleted = held
            if let body = record.body {
                outcome.displace(body.held)
                record.body = nil
            }
            record.changed = true
        default:
            outcome.displace(held)
        }
    }
}
