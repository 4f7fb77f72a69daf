import Foundation

/// A retained change of one target (one article, one comment, or one account's read state of an article), as
/// the reference merge rules see it.
struct MergeEntry: Sendable, Equatable {
    /// An id unique among the entries given to one rule (the rules report superseded entries by it).
    var localSeq: Int64
    var origin: ReplicaID
    var originAccount: String
    var seq: UInt64
    var hlc: HLCTimestamp
    var field: String
    var value: ChangeValue

    /// Write order: hybrid timestamp, then origin replica id (bytes), then origin account (bytes), then the
    /// origin's sequence number. A total order, identical on every replica.
    func precedes(_ other: MergeEntry) -> Bool {
        if hlc != other.hlc { return hlc < other.hlc }
        if origin != other.origin { return origin < other.origin }
        if !originAccount.utf8.elementsEqual(other.originAccount.utf8) {
            return originAccount.utf8.lexicographicallyPrecedes(other.originAccount.utf8)
        }
        return seq < other.seq
    }
}

/// The merge rules, as pure functions of the retained entries of one target: the reference implementation of
/// `Schemas/merge-rules.md`.
///
/// Each returns the materialized state and the entries it has superseded, which the change log may drop:
/// an entry is superseded only when no set of further changes could ever make it matter again, so the state
/// computed from the retained entries is always the state computed from all entries ever seen. That is what
/// makes merging order-insensitive and idempotent. The store merges incrementally (`MergeEngine`); the property
/// tests check that it always agrees with these functions.
enum MergeRules {
    // MARK: - Last writer wins

    /// Last-writer-wins among `entries`: the greatest by ``MergeEntry/precedes(_:)``; all others superseded.
    static func lastWriterWins(_ entries: [MergeEntry]) -> (winner: MergeEntry?, superseded: [Int64]) {
        guard var winner = entries.first else { return (nil, []) }
        for entry in entries.dropFirst() where winner.precedes(entry) { winner = entry }
        return (winner, entries.filter { $0.localSeq != winner.localSeq }.map(\.localSeq))
    }

    // MARK: - Article

    /// The article's winning version: the greatest `(updatedAt, write order)`; a publisher's correction
    /// (a newer `updatedAt`) beats any edit of an older version, whenever it arrives.
    static func article(_ entries: [MergeEntry]) -> (content: ArticleContent?, superseded: [Int64]) {
        var best: (entry: MergeEntry, content: ArticleContent)?
        for entry in entries where entry.field == ChangeField.articleContent {
            // An unreadable version can never win; it is superseded with every other loser below.
            guard let text = entry.value.stringValue, let content = try? ArticleContent.decode(text) else { continue }
            if let current = best {
                let a = content.updatedAtMillis ?? Int64.min
                let b = current.content.updatedAtMillis ?? Int64.min
                if a > b || (a == b && current.entry.precedes(entry)) { best = (entry, content) }
            } else {
                best = (entry, content)
            }
        }
        return (best?.content, entries.filter { $0.localSeq != best?.entry.localSeq }.map(\.localSeq))
    }

    // MARK: - Comment

    /// The materialized comment, or nil while its creation has not arrived.
    struct CommentState: Equatable {
        var articleID: String
        var parentID: String?
        var author: String
        var body: String
        var createdHLC: HLCTimestamp
        var editedHLC: HLCTimestamp?
        var isDeleted: Bool
    }

    /// A comment: created once, its text last-writer-wins among the author's writes, deleted once and forever.
    ///
    /// The author of a comment whose id is bound to an account (`alice:…`) is that account: a creation, edit or
    /// deletion from any other account never counts and is superseded at once. For an id not bound to an account
    /// (written by older versions), the earliest creation wins and its origin's account is the author; writes by
    /// other accounts are kept (a forged earlier creation could still change the author) but never count.
    /// A deleted comment keeps no text.
    static func comment(_ entries: [MergeEntry], commentID: String) -> (state: CommentState?, superseded: [Int64]) {
        let bound = Keys.boundAccount(ofCommentID: commentID)
        var dropped: [Int64] = []
        var live = entries
        if let bound {
            // Writes from any other account can never count.
            dropped += entries.filter { !$0.originAccount.utf8.elementsEqual(bound.utf8) }.map(\.localSeq)
            live = entries.filter { $0.originAccount.utf8.elementsEqual(bound.utf8) }
        }
        var creation: (entry: MergeEntry, record: CommentCreation)?
        for entry in live where entry.field == ChangeField.commentCreated {
            guard let text = entry.value.stringValue,
                  let record = try? CommentCreation.decode(text, commentID: commentID) else {
                dropped.append(entry.localSeq)
                continue
            }
            if let current = creation, current.entry.precedes(entry) {
                dropped.append(entry.localSeq)
            } else {
                if let current = creation { dropped.append(current.entry.localSeq) }
                creation = (entry, record)
            }
        }
        // Each account's edits and deletions are compacted on their own (the latest text, the earliest deletion,
        // which erases the text), whoever is the author now: for an unbound id an earlier creation can still arrive
        // and change the author, and compacting per account gives the same retained set in any arrival order.
        var bodyOf: [[UInt8]: (body: String, hlc: HLCTimestamp?, deleted: Bool)] = [:]
        var accounts: [[UInt8]] = []
        for entry in live where entry.field != ChangeField.commentCreated {
            let account = Array(entry.originAccount.utf8)
            if bodyOf[account] == nil { bodyOf[account] = ("", nil, false); accounts.append(account) }
        }
        for account in accounts {
            let mine = live.filter { Array($0.originAccount.utf8) == account && $0.field != ChangeField.commentCreated }
            let deletions = mine.filter { $0.field == ChangeField.commentDeleted && $0.value.boolValue == true }
            dropped += mine.filter { $0.field == ChangeField.commentDeleted && $0.value.boolValue != true }.map(\.localSeq)
            let bodies = mine.filter { $0.field == ChangeField.commentBody }
            if !deletions.isEmpty {
                // Deleted wins over any edit, in any order; the earliest deletion is kept, the text is erased.
                let first = deletions.min { $0.precedes($1) }
                dropped += deletions.filter { $0.localSeq != first?.localSeq }.map(\.localSeq)
                dropped += bodies.map(\.localSeq)
                bodyOf[account] = ("", nil, true)
            } else {
                let (winner, superseded) = lastWriterWins(bodies.filter { $0.value.stringValue != nil })
                dropped += superseded + bodies.filter { $0.value.stringValue == nil }.map(\.localSeq)
                bodyOf[account] = (winner?.value.stringValue ?? "", winner?.hlc, false)
            }
        }
        let author: String
        if let bound {
            author = bound
        } else if let creation {
            author = creation.entry.originAccount
        } else {
            // An unbound id's edits that arrived before their comment: they wait, compacted, until it does.
            return (nil, dropped)
        }
        let mine = bodyOf[Array(author.utf8)]
        let body = mine?.body ?? ""
        let bodyHLC = mine?.hlc
        let isDeleted = mine?.deleted ?? false
        guard let creation else { return (nil, dropped) }
        var state = CommentState(articleID: creation.record.article, parentID: creation.record.parent, author: author,
                                 body: body, createdHLC: creation.entry.hlc, editedHLC: nil, isDeleted: isDeleted)
        if let bodyHLC, creation.entry.hlc < bodyHLC { state.editedHLC = bodyHLC }
        return (state, dropped)
    }

    // MARK: - Read state

    /// The materialized read state of one account and article.
    struct ReadStateValue: Equatable {
        var readAt: Int64?
        var progress: Double
        var savedAt: Int64?
    }

    /// Read and saved: last writer wins (null means unread / unsaved). Progress: the furthest position written
    /// after the latest reset, where "mark unread" writes the reset (a null progress).
    static func readState(_ entries: [MergeEntry]) -> (state: ReadStateValue?, superseded: [Int64]) {
        guard !entries.isEmpty else { return (nil, []) }
        var dropped: [Int64] = []
        var state = ReadStateValue(readAt: nil, progress: 0, savedAt: nil)

        let (read, readLosers) = lastWriterWins(entries.filter { $0.field == ChangeField.read })
        dropped += readLosers
        state.readAt = read?.value.intValue

        let (saved, savedLosers) = lastWriterWins(entries.filter { $0.field == ChangeField.saved })
        dropped += savedLosers
        state.savedAt = saved?.value.intValue

        let progress = entries.filter { $0.field == ChangeField.progress }
        let (reset, resetLosers) = lastWriterWins(progress.filter { $0.value.isNull })
        dropped += resetLosers
        // Positions written after the latest reset; those before it never count again.
        var live: [MergeEntry] = []
        for entry in progress where !entry.value.isNull {
            if let reset, entry.precedes(reset) { dropped.append(entry.localSeq) } else { live.append(entry) }
        }
        // Keep the Pareto frontier: an entry is dead once a later entry reaches at least as far, because any
        // reset that removes the later one removes it too.
        for entry in live {
            let value = entry.value.doubleValue ?? 0
            let dominated = live.contains { other in
                other.localSeq != entry.localSeq && entry.precedes(other) && (other.value.doubleValue ?? 0) >= value
            }
            if dominated { dropped.append(entry.localSeq) }
        }
        state.progress = live.compactMap { $0.value.doubleValue }.max() ?? 0
        return (state, dropped)
    }
}

/// Canonical JSON for printed documents (dumps, knowledge files): sorted keys, no escaped slashes.
enum CanonicalJSON {
    static func encoder(pretty: Bool = false) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
                                          : [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    static func string(_ value: some Encodable) throws -> String {
        String(decoding: try encoder().encode(value), as: UTF8.self)
    }
}
