import Foundation
import ReaderSync

// The `--json` shapes, one per command, as `Schemas/cli-json.md` documents them and
// `Schemas/cli-json/*.schema.json` pins them down (a test checks every command's output against its schema).
//
// One scheme everywhere:
// - every top-level document has `format`: `readersync-COMMAND/VERSION`;
// - keys are camelCase; an object's own id is `id`; a key holding another thing's id is named after that thing
//   (`article`, `parent`, `origin`, `replica`), as in `readersync dump`;
// - booleans are plain adjectives (`read`, `saved`, `deleted`, `local`), never `isX`;
// - dates are ISO 8601 in UTC with milliseconds (`2025-07-03T12:00:00.000Z`);
// - hybrid timestamps, clocks and sequence numbers (64-bit, may pass 2^53) are decimal strings; counts and sizes
//   are numbers;
// - every key of a shape is always written; a missing value is `null`.

/// Format names of the top-level documents.
enum JSONFormat {
    static let list = "readersync-list/1"
    static let show = "readersync-show/1"
    static let log = "readersync-log/1"
    static let status = "readersync-status/1"
    static let bundleInspect = "readersync-bundle-inspect/1"
    static let importSummary = "readersync-import/1"
    static let sync = "readersync-sync/1"
    static let bundleExport = "readersync-bundle-export/1"
    static let bundleImport = "readersync-bundle-import/1"
    static let search = "readersync-search/1"
    static let budget = "readersync-budget/1"
    static let evict = "readersync-evict/1"
}

extension KeyedEncodingContainer {
    /// Writes `value`, or `null` when it is nil (never leaves the key out).
    mutating func encodeNullable<T: Encodable>(_ value: T?, forKey key: Key) throws {
        if let value { try encode(value, forKey: key) } else { try encodeNil(forKey: key) }
    }
}

// MARK: - Articles, read state, comments

/// An article; `body` only when asked for (`show` always, `list` with --with-body).
struct ArticleJSON: Encodable {
    var article: Article
    var withBody: Bool

    enum CodingKeys: String, CodingKey { case id, source, url, title, byline, topics, related, publishedAt, updatedAt, body }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(article.id, forKey: .id)
        try c.encode(article.source, forKey: .source)
        try c.encodeNullable(article.url, forKey: .url)
        try c.encode(article.title, forKey: .title)
        try c.encodeNullable(article.byline, forKey: .byline)
        try c.encode(article.topics, forKey: .topics)
        try c.encode(article.related, forKey: .related)
        try c.encodeNullable(article.publishedAt.map(Format.iso), forKey: .publishedAt)
        try c.encodeNullable(article.updatedAt.map(Format.iso), forKey: .updatedAt)
        if withBody { try c.encode(article.body, forKey: .body) }
    }
}

/// This account's read state of an article (the keys of `dump`'s read states).
struct ReadStateJSON: Encodable {
    var state: ReadState

    enum CodingKeys: String, CodingKey { case account, article, read, readAt, progress, saved, savedAt }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(state.account, forKey: .account)
        try c.encode(state.articleID, forKey: .article)
        try c.encode(state.isRead, forKey: .read)
        try c.encodeNullable(state.readAt.map(Format.iso), forKey: .readAt)
        try c.encode(state.progress, forKey: .progress)
        try c.encode(state.isSaved, forKey: .saved)
        try c.encodeNullable(state.savedAt.map(Format.iso), forKey: .savedAt)
    }
}

/// One `list` item.
struct FeedItemJSON: Encodable {
    var item: FeedItem
    var withBody: Bool

    enum CodingKeys: String, CodingKey { case article, readState, commentCount }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(ArticleJSON(article: item.article, withBody: withBody), forKey: .article)
        try c.encode(ReadStateJSON(state: item.readState), forKey: .readState)
        try c.encode(item.commentCount, forKey: .commentCount)
    }
}

/// A comment with its replies (the keys of `dump`'s comments, plus `replies`).
struct CommentJSON: Encodable {
    var thread: CommentThread

    enum CodingKeys: String, CodingKey { case id, article, parent, author, body, createdAt, editedAt, deleted, replies }

    func encode(to encoder: any Encoder) throws {
        let comment = thread.comment
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(comment.id, forKey: .id)
        try c.encode(comment.articleID, forKey: .article)
        try c.encodeNullable(comment.parentID, forKey: .parent)
        try c.encode(comment.author, forKey: .author)
        try c.encode(comment.body, forKey: .body)
        try c.encode(Format.iso(comment.createdAt), forKey: .createdAt)
        try c.encodeNullable(comment.editedAt.map(Format.iso), forKey: .editedAt)
        try c.encode(comment.isDeleted, forKey: .deleted)
        try c.encode(thread.replies.map(CommentJSON.init), forKey: .replies)
    }
}

/// `show --json`.
struct ShowJSON: Encodable {
    var detail: ArticleDetail
    var commentCount: Int

    enum CodingKeys: String, CodingKey { case format, article, readState, commentCount, comments, bodyState }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(JSONFormat.show, forKey: .format)
        try c.encode(ArticleJSON(article: detail.article, withBody: true), forKey: .article)
        try c.encode(detail.bodyState.rawValue, forKey: .bodyState)
        try c.encode(ReadStateJSON(state: detail.readState), forKey: .readState)
        try c.encode(commentCount, forKey: .commentCount)
        try c.encode(detail.comments.map(CommentJSON.init), forKey: .comments)
    }
}

// MARK: - Change log

/// One `log` entry, flat.
struct LogEntryJSON: Encodable {
    var entry: ChangeLogEntry
    var isLocal: Bool

    enum CodingKeys: String, CodingKey {
        case cursor, local, origin, originAccount, seq, hlc, time, entity, key, field, type, value
    }

    func encode(to encoder: any Encoder) throws {
        let change = entry.change
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(entry.cursor, forKey: .cursor)
        try c.encode(isLocal, forKey: .local)
        try c.encode(change.origin.description, forKey: .origin)
        try c.encode(entry.originAccount, forKey: .originAccount)
        try c.encode(String(change.seq), forKey: .seq)
        try c.encode(String(change.hlc.rawValue), forKey: .hlc)
        try c.encode(Format.iso(millis: Int64(change.hlc.millis)), forKey: .time)
        try c.encode(change.entity.description, forKey: .entity)
        try c.encode(change.key, forKey: .key)
        try c.encode(change.field, forKey: .field)
        try c.encode(change.value.typeName, forKey: .type)
        switch change.value {
        case .null: try c.encodeNil(forKey: .value)
        case .bool(let b): try c.encode(b, forKey: .value)
        // Integers are milliseconds, far below 2^53; one beyond (only a forged bundle) is a string, so no reader
        // rounds it.
        case .int(let i) where i.magnitude <= 1 << 53 - 1: try c.encode(i, forKey: .value)
        case .int(let i): try c.encode(String(i), forKey: .value)
        case .double(let d): try c.encode(d, forKey: .value)
        case .string(let s): try c.encode(s, forKey: .value)
        }
    }
}

// MARK: - Status

/// `status --json`.
struct StatusJSON: Encodable {
    var status: ReplicaStatus
    var storage: StorageFigures

    enum CodingKeys: String, CodingKey {
        case format, replica, account, role, path, schemaVersion, databaseBytes, articles, comments, readStates,
             clock, clockTime, lastSequence, logEntries, logBytes, knownReplicas, storageBudget, storageBytes,
             bodiesNotHeld, searchIndexBytes
    }

    func encode(to encoder: any Encoder) throws {
        let s = status
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(JSONFormat.status, forKey: .format)
        try c.encode(s.replicaID.description, forKey: .replica)
        try c.encode(s.account, forKey: .account)
        try c.encode(s.role.rawValue, forKey: .role)
        try c.encodeNullable(s.path, forKey: .path)
        try c.encode(s.schemaVersion, forKey: .schemaVersion)
        try c.encode(s.databaseBytes, forKey: .databaseBytes)
        try c.encode(s.articles, forKey: .articles)
        try c.encode(s.comments, forKey: .comments)
        try c.encode(s.readStates, forKey: .readStates)
        try c.encode(String(s.clock.rawValue), forKey: .clock)
        try c.encodeNullable(s.clock == .zero ? nil : Format.iso(millis: Int64(s.clock.millis)), forKey: .clockTime)
        try c.encode(String(s.lastSequence), forKey: .lastSequence)
        try c.encode(s.logEntries, forKey: .logEntries)
        try c.encode(s.logBytes, forKey: .logBytes)
        try c.encode(s.knownReplicas, forKey: .knownReplicas)
        try c.encodeNullable(storage.budget.map(BudgetJSON.init), forKey: .storageBudget)
        try c.encode(storage.bytesInUse, forKey: .storageBytes)
        try c.encode(storage.bodiesNotHeld, forKey: .bodiesNotHeld)
        try c.encode(storage.searchIndexBytes, forKey: .searchIndexBytes)
    }
}

// MARK: - Bundles

/// `bundle inspect --json`.
struct BundleInspectJSON: Encodable {
    var report: BundleInspection

    struct RangeJSON: Encodable {
        var origin: String
        var account: String
        var scope: String
        var from: String
        var to: String
    }

    enum CodingKeys: String, CodingKey {
        case format, formatVersion, schemaVersion, replica, account, changeCount, changesByEntity, payloadBytes,
             uncompressedBytes, checksum, ranges
    }

    func encode(to encoder: any Encoder) throws {
        let r = report
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(JSONFormat.bundleInspect, forKey: .format)
        try c.encode(Int(r.formatVersion), forKey: .formatVersion)
        try c.encode(Int(r.schemaVersion), forKey: .schemaVersion)
        try c.encode(r.source.description, forKey: .replica)
        try c.encode(r.account, forKey: .account)
        try c.encode(r.changeCount, forKey: .changeCount)
        var byEntity: [String: Int] = [:]
        for kind in EntityKind.allCases { byEntity[kind.description] = r.countsByEntity[kind.description] ?? 0 }
        try c.encode(byEntity, forKey: .changesByEntity)
        try c.encode(r.payloadBytes, forKey: .payloadBytes)
        try c.encode(r.uncompressedBytes, forKey: .uncompressedBytes)
        try c.encode(String(format: "0x%08x", r.checksum), forKey: .checksum)
        try c.encode(r.ranges.map {
            RangeJSON(origin: $0.origin.description, account: $0.account, scope: $0.scope, from: String($0.from), to: String($0.to))
        }, forKey: .ranges)
    }
}

/// `bundle export --json`.
struct BundleExportJSON: Encodable {
    var format = JSONFormat.bundleExport
    var file: String
    var changes: Int
    var bytes: Int
    var readState: Bool
    var complete: Bool
}

/// `bundle import --json`.
struct BundleImportJSON: Encodable {
    var format = JSONFormat.bundleImport
    var file: String
    var received: Int
    var applied: Int
    var duplicates: Int
}

// MARK: - Import and sync

/// `import --json`.
struct ImportJSON: Encodable {
    struct UnknownFieldJSON: Encodable {
        var name: String
        var articles: Int
        var firstPlace: String
    }

    var format = JSONFormat.importSummary
    var file: String
    var shape: String?
    var bytes: Int64
    var articles: Int
    var new: Int
    var updated: Int
    var unchanged: Int
    var keptNewer: Int
    var unknownFields: [UnknownFieldJSON]

    init(file: String, summary: ImportSummary) {
        self.file = file
        shape = summary.shape?.rawValue
        bytes = summary.bytes
        articles = summary.articles
        new = summary.inserted
        updated = summary.updated
        unchanged = summary.unchanged
        keptNewer = summary.keptNewer
        unknownFields = summary.unknownFields.map { UnknownFieldJSON(name: $0.name, articles: $0.articles, firstPlace: $0.firstPlace) }
    }

    enum CodingKeys: String, CodingKey {
        case format, file, shape, bytes, articles, new, updated, unchanged, keptNewer, unknownFields
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(format, forKey: .format)
        try c.encode(file, forKey: .file)
        try c.encodeNullable(shape, forKey: .shape)
        try c.encode(bytes, forKey: .bytes)
        try c.encode(articles, forKey: .articles)
        try c.encode(new, forKey: .new)
        try c.encode(updated, forKey: .updated)
        try c.encode(unchanged, forKey: .unchanged)
        try c.encode(keptNewer, forKey: .keptNewer)
        try c.encode(unknownFields, forKey: .unknownFields)
    }
}

/// `sync --json`, for a replica file and for a server.
struct SyncJSON: Encodable {
    struct DirectionJSON: Encodable {
        var changes: Int
        var bytes: Int
        var applied: Int
        var duplicates: Int
    }

    struct RefusedJSON: Encodable {
        var origin: String
        var seq: String
        var entity: String
        var key: String
        var field: String
        var reason: String
    }

    var format = JSONFormat.sync
    var peer: String
    /// `replica` (a file) or `server`.
    var kind: String
    var sent: DirectionJSON
    var received: DirectionJSON
    /// Whether read state was exchanged (false with a replica of another account).
    var readState: Bool
    var refused: [RefusedJSON]
    /// Bodies this replica put back in the peer, and the peer put back here (a replica file only; 0 with a server).
    var bodiesSent = 0
    var bodiesReceived = 0
    /// What enforcing this replica's storage budget after the sync did, and the peer's (a replica file only).
    var eviction: EvictionJSON?
    var peerEviction: EvictionJSON?

    enum CodingKeys: String, CodingKey {
        case format, peer, kind, sent, received, readState, refused, bodiesSent, bodiesReceived, eviction, peerEviction
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(format, forKey: .format)
        try c.encode(peer, forKey: .peer)
        try c.encode(kind, forKey: .kind)
        try c.encode(sent, forKey: .sent)
        try c.encode(received, forKey: .received)
        try c.encode(readState, forKey: .readState)
        try c.encode(refused, forKey: .refused)
        try c.encode(bodiesSent, forKey: .bodiesSent)
        try c.encode(bodiesReceived, forKey: .bodiesReceived)
        try c.encodeNullable(eviction, forKey: .eviction)
        try c.encodeNullable(peerEviction, forKey: .peerEviction)
    }
}

// MARK: - Search, storage budget, eviction

/// A storage budget: `bytes`, and `keepUnreadFor` in seconds.
struct BudgetJSON: Encodable {
    var bytes: Int64
    var keepUnreadFor: Double

    init(_ budget: StorageBudget) {
        bytes = budget.bytes
        keepUnreadFor = budget.keepUnreadFor
    }
}

/// What enforcing the storage budget did (`sync`'s `eviction` and `peerEviction`).
struct EvictionJSON: Encodable {
    var report: EvictionReport

    init(_ report: EvictionReport) { self.report = report }

    enum CodingKeys: String, CodingKey {
        case budget, bytesBefore, bytesAfter, fileBytes, evicted, evictedBodyBytes, stillOverBudget
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeNullable(report.budget.map(BudgetJSON.init), forKey: .budget)
        try c.encode(report.bytesBefore, forKey: .bytesBefore)
        try c.encode(report.bytesAfter, forKey: .bytesAfter)
        try c.encode(report.fileBytes, forKey: .fileBytes)
        try c.encode(report.evicted, forKey: .evicted)
        try c.encode(report.evictedBodyBytes, forKey: .evictedBodyBytes)
        try c.encode(report.stillOverBudget, forKey: .stillOverBudget)
    }
}

/// `evict --json`: what enforcing the budget, or evicting one article's body, did.
struct EvictJSON: Encodable {
    /// The one article asked for, or nil when the budget was enforced.
    var article: String?
    var report: EvictionReport

    enum CodingKeys: String, CodingKey { case format, article, eviction }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(JSONFormat.evict, forKey: .format)
        try c.encodeNullable(article, forKey: .article)
        try c.encode(EvictionJSON(report), forKey: .eviction)
    }
}

/// `budget show --json`.
struct BudgetShowJSON: Encodable {
    var storage: StorageFigures

    enum CodingKeys: String, CodingKey { case format, budget, bytesInUse, fileBytes, overBudget, bodiesNotHeld }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(JSONFormat.budget, forKey: .format)
        try c.encodeNullable(storage.budget.map(BudgetJSON.init), forKey: .budget)
        try c.encode(storage.bytesInUse, forKey: .bytesInUse)
        try c.encode(storage.fileBytes, forKey: .fileBytes)
        try c.encode(storage.isOverBudget, forKey: .overBudget)
        try c.encode(storage.bodiesNotHeld, forKey: .bodiesNotHeld)
    }
}

/// One `search` hit: the article's headline fields, the snippet and score, this account's read state, and
/// whether the body is held.
struct SearchHitJSON: Encodable {
    var hit: SearchHit

    enum CodingKeys: String, CodingKey {
        case id, title, source, byline, publishedAt, snippet, score, read, readAt, progress, saved, bodyState
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(hit.id, forKey: .id)
        try c.encode(hit.title, forKey: .title)
        try c.encode(hit.source, forKey: .source)
        try c.encodeNullable(hit.byline, forKey: .byline)
        try c.encodeNullable(hit.publishedAt.map(Format.iso), forKey: .publishedAt)
        try c.encode(hit.snippet, forKey: .snippet)
        try c.encode(hit.score, forKey: .score)
        try c.encode(hit.readState.isRead, forKey: .read)
        try c.encodeNullable(hit.readState.readAt.map(Format.iso), forKey: .readAt)
        try c.encode(hit.readState.progress, forKey: .progress)
        try c.encode(hit.readState.isSaved, forKey: .saved)
        try c.encode(hit.bodyState.rawValue, forKey: .bodyState)
    }
}

/// `search --json`.
struct SearchJSON: Encodable {
    var format = JSONFormat.search
    var query: String
    var hits: [SearchHitJSON]
}
