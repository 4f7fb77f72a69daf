import Foundation

/// A retained change-log entry of one target (one article, one comment, or one account's read state of an
/// article), as the merge rules see it.
struct MergeEntry: Sendable, Equatable {
    var localSeq: Int64
    var origin: ReplicaID
    var originAccount: String
    var seq: UInt64
    var hlc: HLCTimestamp
    var field: String
    var value: ChangeValue

    /// The total order used to pick one winner among concurrent writes: hybrid timestamp, then origin
    /// replica id, then the origin's sequence number. Identical on every replica.
    func precedes(_ other: MergeEntry) -> Bool {
        if hlc != other.hlc { return hlc < other.hlc }
        if origin != other.origin { return origin < other.origin }
        return seq < other.seq
    }
}

/// The merge rules, as pure functions of the retained entries of one target.
///
/// Each returns the materialized state and the entries it has superseded, which the change log may drop:
/// an entry is superseded only when no set of further changes could ever make it matter again, so the state
/// computed from the retained entries is always the state computed from all entries ever seen. That is what
/// makes merging order-insensitive and idempotent: the state is a function of the set of changes, not of the
/// order they arrived in. `Schemas/merge-rules.md` is the table these implement.
enum MergeRules {
    // MARK: - Last writer wins

    /// Last-writer-wins among `entries`: the greatest by ``MergeEntry/precedes(_:)``; all others superseded.
    static func lastWriterWins(_ entries: [MergeEntry]) -> (winner: MergeEntry?, superseded: [Int64]) {
        guard var winner = entries.first else { return (nil, []) }
        for entry in entries.dropFirst() where winner.precedes(entry) { winner = entry }
        return (winner, entries.filter { $0.localSeq != winner.localSeq }.map(\.localSeq))
    }

    // MARK: - Article

    /// The article's winning version: the greatest `(updatedAt, hlc, origin, seq)`; a publisher's correction
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

    /// A comment: created once (the earliest creation wins; its origin's account is the author), its text
    /// last-writer-wins among the author's writes, deleted once and forever. Writes by any account other than
    /// the author are ignored everywhere. A deleted comment keeps no text.
    static func comment(_ entries: [MergeEntry]) -> (state: CommentState?, superseded: [Int64]) {
        let creations = entries.filter { $0.field == ChangeField.commentCreated }
        var creation: (entry: MergeEntry, record: CommentCreation)?
        var dropped: [Int64] = []
        for entry in creations {
            guard let text = entry.value.stringValue, let record = try? CommentCreation.decode(text) else {
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
        guard let creation else {
            // Edits that arrived before their comment: keep them all until it does.
            return (nil, dropped)
        }
        let author = creation.entry.originAccount
        // Writes by anyone but the author never count, on any replica. They are kept (not compacted): only a
        // forged duplicate creation could make another account the author, and the earliest creation must
        // then find that account's writes.
        let byAuthor = entries.filter { $0.originAccount == author && $0.field != ChangeField.commentCreated }

        let deletions = byAuthor.filter { $0.field == ChangeField.commentDeleted && $0.value.boolValue == true }
        dropped += byAuthor.filter { $0.field == ChangeField.commentDeleted && $0.value.boolValue != true }.map(\.localSeq)
        let bodies = byAuthor.filter { $0.field == ChangeField.commentBody }
        var state = CommentState(articleID: creation.record.article, parentID: creation.record.parent,
                                 author: author, body: "", createdHLC: creation.entry.hlc,
                                 editedHLC: nil, isDeleted: false)
        if !deletions.isEmpty {
            // Deleted wins over any edit, in any order; the earliest deletion is kept, the text is erased.
            let first = deletions.min { $0.precedes($1) }
            state.isDeleted = true
            dropped += deletions.filter { $0.localSeq != first?.localSeq }.map(\.localSeq)
            dropped += bodies.map(\.localSeq)
        } else {
            let (winner, superseded) = lastWriterWins(bodies.filter { $0.value.stringValue != nil })
            dropped += superseded + bodies.filter { $0.value.stringValue == nil }.map(\.localSeq)
            if let winner {
                state.body = winner.value.stringValue ?? ""
                if creation.entry.hlc < winner.hlc { state.editedHLC = winner.hlc }
            }
        }
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

/// An article's content as one change carries it: every field but the id, as canonical JSON.
struct ArticleContent: Codable, Equatable, Sendable {
    var source: String
    var url: String?
    var title: String
    var byline: String?
    var body: String
    var topics: [String]
    var related: [String]
    var publishedAtMillis: Int64?
    var updatedAtMillis: Int64?

    enum CodingKeys: String, CodingKey {
        case source, url, title, byline, body, topics, related
        case publishedAtMillis = "publishedAt"
        case updatedAtMillis = "updatedAt"
    }

    init(_ article: Article) {
        source = article.source
        url = article.url
        title = article.title
        byline = article.byline
        body = article.body
        topics = article.topics
        related = article.related
        publishedAtMillis = article.publishedAt.map(ISO8601.millis(from:))
        updatedAtMillis = article.updatedAt.map(ISO8601.millis(from:))
    }

    func article(id: String) -> Article {
        Article(id: id, source: source, url: url, title: title, byline: byline, body: body,
                topics: topics, related: related,
                publishedAt: publishedAtMillis.map(ISO8601.date(fromMillis:)),
                updatedAt: updatedAtMillis.map(ISO8601.date(fromMillis:)))
    }

    func encoded() throws -> String {
        try CanonicalJSON.string(self)
    }

    static func decode(_ text: String) throws -> ArticleContent {
        try JSONDecoder().decode(ArticleContent.self, from: Data(text.utf8))
    }
}

/// A comment's creation record: where it hangs. Its author is the account of the replica that wrote it.
struct CommentCreation: Codable, Equatable, Sendable {
    var article: String
    var parent: String?

    func encoded() throws -> String { try CanonicalJSON.string(self) }

    static func decode(_ text: String) throws -> CommentCreation {
        try JSONDecoder().decode(CommentCreation.self, from: Data(text.utf8))
    }
}

/// Canonical JSON: sorted keys, no escaped slashes, no insignificant white space.
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
