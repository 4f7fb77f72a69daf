public import Foundation

// The async API: every mutation, query and sync of a replica, for apps.
//
// Each method runs the synchronous method of the same name on a dispatch queue (`offload`), never on Swift's
// cooperative threads, and carries the calling task's cancellation to it: a cancelled call throws
// `CancellationError`, does not start work it had not started, and rolls back the transaction it was in. In an
// async context Swift picks these overloads; synchronous code (the CLI, tests, a background queue of your own)
// keeps calling the synchronous ones.

extension Replica {
    // MARK: Opening

    /// Creates a replica file (see ``create(at:account:role:options:)``) without blocking the calling task's
    /// thread.
    public static func create(at url: URL, account: String, role: ReplicaRole = .device,
                              options: ReplicaOptions = ReplicaOptions()) async throws -> Replica {
        let path = url.path
        return try await offloadStatic { try Replica.create(at: path, account: account, role: role, options: options) }
    }

    /// Opens a replica file (see ``open(at:options:)``), migrating an older store first, without blocking the
    /// calling task's thread.
    public static func open(at url: URL, options: ReplicaOptions = ReplicaOptions()) async throws -> Replica {
        let path = url.path
        return try await offloadStatic { try Replica.open(at: path, options: options) }
    }

    /// Opens the replica at `url`, or creates one for `account` when there is no file (see
    /// ``openOrCreate(at:account:options:)``), without blocking the calling task's thread.
    public static func openOrCreate(at url: URL, account: String,
                                    options: ReplicaOptions = ReplicaOptions()) async throws -> Replica {
        try await offloadStatic { try Replica.openOrCreate(at: url, account: account, options: options) }
    }

    // MARK: Reading

    /// The feed (see ``feed(_:)``).
    public func feed(_ query: FeedQuery = FeedQuery()) async throws -> [FeedItem] {
        try await offload { try self.feed(query) }
    }

    /// One page of the feed (see ``feedPage(_:after:limit:includeBodies:)``).
    public func feedPage(_ query: FeedQuery = FeedQuery(), after cursor: FeedCursor? = nil, limit: Int,
                         includeBodies: Bool = true) async throws -> FeedPage {
        try await offload { try self.feedPage(query, after: cursor, limit: limit, includeBodies: includeBodies) }
    }

    /// One article with its comment threads and this account's read state (see ``article(_:)``).
    public func article(_ id: String) async throws -> ArticleDetail {
        try await offload { try self.article(id) }
    }

    /// The comment threads of an article (see ``comments(on:)``).
    public func comments(on articleID: String) async throws -> [CommentThread] {
        try await offload { try self.comments(on: articleID) }
    }

    /// One comment (see ``comment(_:)``).
    public func comment(_ id: String) async throws -> Comment {
        try await offload { try self.comment(id) }
    }

    /// This account's read state of an article (see ``readState(of:)``).
    public func readState(of articleID: String) async throws -> ReadState {
        try await offload { try self.readState(of: articleID) }
    }

    /// Counts and sync state (see ``status()``).
    public func status() async throws -> ReplicaStatus {
        try await offload { try self.status() }
    }

    /// What this replica holds (see ``knowledge()``).
    public func knowledge() async throws -> Knowledge {
        try await offload { try self.knowledge() }
    }

    /// Full-text search (see ``search(_:options:)``).
    public func search(_ query: String, options: SearchOptions = SearchOptions()) async throws -> [SearchHit] {
        try await offload { try self.search(query, options: options) }
    }

    /// Whether this replica holds an article's body (see ``bodyState(of:)``).
    public func bodyState(of articleID: String) async throws -> BodyState {
        try await offload { try self.bodyState(of: articleID) }
    }

    /// The change log (see ``changeLog(after:limit:)``).
    public func changeLog(after cursor: String? = nil, limit: Int = 1000) async throws -> [ChangeLogEntry] {
        try await offload { try self.changeLog(after: cursor, limit: limit) }
    }

    /// The canonical dump (see ``canonicalDump(account:bodies:)``).
    public func canonicalDump(account: String? = nil, bodies: DumpBodies = .text) async throws -> Data {
        try await offload { try self.canonicalDump(account: account, bodies: bodies) }
    }

    // MARK: Reading state and comments

    /// Marks an article read (see ``markRead(_:)``).
    public func markRead(_ articleID: String) async throws {
        try await offload { try self.markRead(articleID) }
    }

    /// Marks an article unread (see ``markUnread(_:)``).
    public func markUnread(_ articleID: String) async throws {
        try await offload { try self.markUnread(articleID) }
    }

    /// Records reading progress (see ``setProgress(_:_:)``).
    public func setProgress(_ articleID: String, _ fraction: Double) async throws {
        try await offload { try self.setProgress(articleID, fraction) }
    }

    /// Saves an article (see ``save(_:)``).
    public func save(_ articleID: String) async throws {
        try await offload { try self.save(articleID) }
    }

    /// Unsaves an article (see ``unsave(_:)``).
    public func unsave(_ articleID: String) async throws {
        try await offload { try self.unsave(articleID) }
    }

    /// Adds a comment (see ``addComment(to:body:replyTo:)``).
    @discardableResult
    public func addComment(to articleID: String, body: String, replyTo parentID: String? = nil) async throws -> Comment {
        try await offload { try self.addComment(to: articleID, body: body, replyTo: parentID) }
    }

    /// Edits a comment (see ``editComment(_:body:)``).
    public func editComment(_ commentID: String, body: String) async throws {
        try await offload { try self.editComment(commentID, body: body) }
    }

    /// Deletes a comment (see ``deleteComment(_:)``).
    public func deleteComment(_ commentID: String) async throws {
        try await offload { try self.deleteComment(commentID) }
    }

    /// Publishes or corrects articles (see ``upsertArticles(_:)``).
    @discardableResult
    public func upsertArticles(_ articles: [Article]) async throws -> UpsertSummary {
        try await offload { try self.upsertArticles(articles) }
    }

    /// Imports articles from a JSON file (see ``importArticles(from:progress:)``); cancelling rolls the whole
    /// import back.
    @discardableResult
    public func importArticles(contentsOf url: URL, rejectsUnknownFields: Bool = false,
                               progress: ProgressHandler? = nil) async throws -> ImportSummary {
        try await offload {
            try self.importArticles(from: ArticleReader(contentsOf: url, rejectsUnknownFields: rejectsUnknownFields),
                                    progress: progress)
        }
    }

    // MARK: Bundles and sync

    /// Exports a bundle file (see ``exportBundle(to:for:account:receiver:maxChanges:maxBytes:progress:)``);
    /// cancelled, it writes no file.
    @discardableResult
    public func exportBundle(to url: URL, for theirs: Knowledge, account: String?, receiver: ReplicaID? = nil,
                             maxChanges: Int? = nil, maxBytes: Int? = nil,
                             progress: ProgressHandler? = nil) async throws -> BundleExportSummary {
        try await offload {
            try self.exportBundle(to: url, for: theirs, account: account, receiver: receiver, maxChanges: maxChanges,
                                  maxBytes: maxBytes, progress: progress)
        }
    }

    /// Builds a bundle in memory (see ``exportBundleData(for:account:receiver:maxChanges:maxBytes:)``).
    public func exportBundleData(for theirs: Knowledge, account: String?, receiver: ReplicaID? = nil,
                                 maxChanges: Int? = nil, maxBytes: Int? = nil) async throws -> (data: Data, summary: BundleExportSummary) {
        try await offload {
            try self.exportBundleData(for: theirs, account: account, receiver: receiver, maxChanges: maxChanges,
                                      maxBytes: maxBytes)
        }
    }

    /// Applies a bundle file (see ``applyBundle(at:progress:)``); cancelled, the replica is unchanged.
    @discardableResult
    public func applyBundle(at url: URL, progress: ProgressHandler? = nil) async throws -> BundleApplyResult {
        try await offload { try self.applyBundle(at: url, progress: progress) }
    }

    /// Applies a bundle held in memory (see ``applyBundle(data:)``); cancelled, the replica is unchanged.
    @discardableResult
    public func applyBundle(data: Data) async throws -> BundleApplyResult {
        try await offload { try self.applyBundle(data: data) }
    }

    /// Syncs with another replica both ways (see ``sync(with:progress:)``). Cancelled, a direction not yet
    /// applied is not applied; a direction already applied stays (each is whole).
    @discardableResult
    public func sync(with peer: Replica, progress: ProgressHandler? = nil) async throws -> SyncReport {
        try await offload { try self.sync(with: peer, progress: progress) }
    }

    // MARK: Bodies and the storage budget

    /// The storage budget (see ``storageBudget()``).
    public func storageBudget() async throws -> StorageBudget? {
        try await offload { try self.storageBudget() }
    }

    /// Sets or clears the storage budget (see ``setStorageBudget(_:)``).
    public func setStorageBudget(_ budget: StorageBudget?) async throws {
        try await offload { try self.setStorageBudget(budget) }
    }

    /// Bytes in use (see ``storageBytes()``).
    public func storageBytes() async throws -> Int64 {
        try await offload { try self.storageBytes() }
    }

    /// Evicts bodies until the replica fits its budget (see ``enforceStorageBudget()``).
    @discardableResult
    public func enforceStorageBudget() async throws -> EvictionReport {
        try await offload { try self.enforceStorageBudget() }
    }

    /// Evicts one article's body (see ``evictBody(of:)``).
    @discardableResult
    public func evictBody(of articleID: String) async throws -> Bool {
        try await offload { try self.evictBody(of: articleID) }
    }

    /// Notes that the user opened an article (see ``recordOpened(_:)``).
    public func recordOpened(_ articleID: String) async throws {
        try await offload { try self.recordOpened(articleID) }
    }

    /// Articles held without their body (see ``articlesWithoutBody(limit:)``).
    public func articlesWithoutBody(limit: Int = 1000) async throws -> [String] {
        try await offload { try self.articlesWithoutBody(limit: limit) }
    }

    /// Stores bodies handed over by a holder, each checked against its digest (see ``fillBodies(_:)``).
    @discardableResult
    public func fillBodies(_ bodies: [ArticleBody]) async throws -> BodyFillReport {
        try await offload { try self.fillBodies(bodies) }
    }

    // MARK: Running work off the cooperative pool

    /// ``offload(_:)`` for the static openers, which have no replica yet.
    static func offloadStatic<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await Cancellation.offload(body)
    }
}
