public import Foundation
public import ReaderSync

/// An account of the sync server, as the store keeps it (never its token: only the token's SHA-256).
public struct ServerAccount: Sendable, Equatable, Codable {
    /// The account name; device replicas of this account are created with the same name.
    public var name: String
    /// Reader or editor.
    public var role: AccountRole
    /// When it was added.
    public var createdAt: Date
    /// When its token was revoked, if it was; a revoked account can no longer sync.
    public var revokedAt: Date?

    /// Creates an account value.
    public init(name: String, role: AccountRole, createdAt: Date, revokedAt: Date? = nil) {
        self.name = name
        self.role = role
        self.createdAt = createdAt
        self.revokedAt = revokedAt
    }

    /// Whether the account may still sync.
    public var isActive: Bool { revokedAt == nil }
}

/// A newly added account and its bearer token, which is shown once and never stored.
public struct NewAccount: Sendable, Equatable {
    /// The account.
    public var account: ServerAccount
    /// The bearer token for its devices.
    public var token: String
}

/// Everything the sync server keeps: accounts, and the shared replica that holds every account's changes.
///
/// The HTTP layer serves routes over this protocol only, so the storage can be swapped without touching it.
/// Implementations must keep no per-process state that another server process could contradict: every call
/// reads and writes the database, so several stateless servers can share one store (a PostgreSQL store
/// implementing this protocol later; today several `readersync-server` processes over one SQLite file). In
/// particular ``authenticate(token:)`` must consult the store on every call, so a revoked token stops working
/// at once in every process. A push must be applied atomically: when ``push(_:from:)`` returns, the changes
/// are durable; when it throws, nothing of the bundle was applied.
///
/// Every method throws ``ServerStoreError``.
public protocol ServerStore: Sendable {
    /// The active account whose token this is, or nil for an unknown or revoked token.
    func authenticate(token: String) async throws -> ServerAccount?
    /// Adds an account and returns its new token.
    func addAccount(name: String, role: AccountRole) async throws -> NewAccount
    /// Every account, revoked ones included, by name.
    func accounts() async throws -> [ServerAccount]
    /// Revokes an account's token; revoking a revoked account does nothing.
    func revokeAccount(name: String) async throws -> ServerAccount
    /// Gives an account a new token and returns it; the old token stops working at once. A revoked account is
    /// active again with the new token (this is how a revoked name comes back: names cannot be added twice).
    func rotateToken(name: String) async throws -> NewAccount
    /// What the store holds that `account`'s replicas may see: every shared entry, and read-state entries of
    /// that account's own replicas only.
    func knowledge(for account: ServerAccount) async throws -> Knowledge
    /// Applies a bundle pushed by `account`, atomically, under the server's rights rules and `limits`.
    ///
    /// The per-minute limit is counted in the store, not in memory, so it holds across every server process
    /// sharing the store. A push over a limit applies nothing and throws ``ServerStoreError/Kind/tooManyChanges``,
    /// ``ServerStoreError/Kind/commentTooLong`` or ``ServerStoreError/Kind/rateLimited`` (with
    /// ``ServerStoreError/retryAfterSeconds``).
    func push(_ bundle: Data, from account: ServerAccount, limits: PushLimits) async throws -> PushResponse
    /// A page of at most `maxChanges` changes that `knowledge` lacks and `account` may see.
    func pull(knowledge: Knowledge, for account: ServerAccount, maxChanges: Int) async throws -> PullPage
    /// The bodies of the articles `ids`, for a device that evicted them (`POST /v1/articles/bodies`). Articles are
    /// shared, so every account may have every body.
    ///
    /// Ids are taken in order, a repeated one once: an article whose body the store holds goes to
    /// ``ArticleBodiesAnswer/bodies`` (with the SHA-256 of its UTF-8), any other id to
    /// ``ArticleBodiesAnswer/missing``. Once the bodies answered reach `maxBytes` bytes of UTF-8 text, the ids not
    /// yet looked at go to ``ArticleBodiesAnswer/truncated`` unread, so one call never builds more than `maxBytes`
    /// plus one body; at least one body is answered when the first id has one. The caller has checked the ids
    /// (``ArticleBodiesRequest/decode(json:)``).
    func articleBodies(_ ids: [String], maxBytes: Int) async throws -> ArticleBodiesAnswer
    /// Publishes articles to every account (an upsert: unchanged articles record nothing).
    func importArticles(_ articles: [Article]) async throws -> UpsertSummary
    /// The canonical dump of the store's state: articles, comments, and `account`'s read state (nil: all).
    func canonicalDump(account: String?) async throws -> Data
}

extension ServerStore {
    /// Applies a bundle pushed by `account` with no limits (the operator's own tools; the HTTP API always passes the
    /// configured ``PushLimits``).
    public func push(_ bundle: Data, from account: ServerAccount) async throws -> PushResponse {
        try await push(bundle, from: account, limits: .unlimited)
    }
}

/// Per-account limits on what one push may carry and how much an account may push per minute.
///
/// Only changes new to the server count (changes it already holds, and other accounts' changes relayed by the
/// device, do not). A push over a limit applies nothing: it is answered 413 (too many changes at once, a comment
/// too long) or 429 with `Retry-After` (too many changes this minute). nil turns a limit off.
public struct PushLimits: Sendable, Equatable {
    /// At most this many new changes in one push (413 beyond). The default, 2,000, is the client's push page.
    public var maxChangesPerPush: Int?
    /// At most this many new changes per account in any 60 seconds, across every server process sharing the
    /// store (429 beyond, with `Retry-After`).
    public var maxChangesPerMinute: Int?
    /// At most this many characters in a comment's text (413 beyond, naming the comment).
    public var maxCommentLength: Int?

    /// The window of ``maxChangesPerMinute``, in milliseconds.
    public static let windowMillis: Int64 = 60_000

    /// The defaults: 2,000 changes per push, 6,000 per minute, comments as long as the core allows (10,000
    /// characters).
    public init(maxChangesPerPush: Int? = 2_000, maxChangesPerMinute: Int? = 6_000,
                maxCommentLength: Int? = Replica.maxCommentLength) {
        self.maxChangesPerPush = maxChangesPerPush
        self.maxChangesPerMinute = maxChangesPerMinute
        self.maxCommentLength = maxCommentLength
    }

    /// No limits.
    public static let unlimited = PushLimits(maxChangesPerPush: nil, maxChangesPerMinute: nil, maxCommentLength: nil)
}

/// What went wrong in a server store, with the context to show a client or an operator.
public struct ServerStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kind of failure; the HTTP layer picks the status from it.
    public enum Kind: String, Sendable, Equatable {
        /// A request or argument that is not acceptable (an invalid account name, a bad page size).
        case invalidInput
        /// An account that does not exist.
        case notFound
        /// An account name that is taken.
        case alreadyExists
        /// A change the caller has no right to make (another author's comment); nothing was applied.
        case forbidden
        /// A bundle that is malformed, truncated or inconsistent; nothing was applied.
        case invalidBundle
        /// A pushed change whose value is outside its field's rule (`merge-rules.md`, "Values"); nothing was applied.
        case invalidValue
        /// A bundle that starts after changes the server lacks; fetch the server's knowledge again.
        case missingChanges
        /// A bundle stamped too far in the future for the server's clock.
        case clockSkew
        /// A push with more new changes than ``PushLimits/maxChangesPerPush``; nothing was applied.
        case tooManyChanges
        /// A push with a comment longer than ``PushLimits/maxCommentLength``; nothing was applied.
        case commentTooLong
        /// A push over the account's ``PushLimits/maxChangesPerMinute``; nothing was applied. Retry after
        /// ``ServerStoreError/retryAfterSeconds``.
        case rateLimited
        /// The database or file system failed: a server-side fault.
        case storage
    }

    /// The kind of failure.
    public var kind: Kind
    /// One line naming what is wrong.
    public var message: String
    /// For a forbidden comment change or a comment too long: the comment.
    public var commentID: String?
    /// For ``Kind/rateLimited``: when the push would fit again, in seconds from now.
    public var retryAfterSeconds: Int?

    /// Creates an error.
    public init(_ kind: Kind, _ message: String, commentID: String? = nil, retryAfterSeconds: Int? = nil) {
        self.kind = kind
        self.message = message
        self.commentID = commentID
        self.retryAfterSeconds = retryAfterSeconds
    }

    /// The message.
    public var description: String { message }

    /// The store error for a core error.
    public init(_ error: ReaderSyncError) {
        switch error {
        case .invalidInput(let m), .invalidImport(let m): self.init(.invalidInput, m)
        case .notFound(let m): self.init(.notFound, m)
        case .forbidden(let m): self.init(.forbidden, m)
        case .invalidBundle(let m): self.init(.invalidBundle, m)
        case .invalidValue(let m): self.init(.invalidValue, m)
        case .missingChanges(let m): self.init(.missingChanges, m)
        case .clockSkew(let m): self.init(.clockSkew, m)
        case .incompatibleReplica(let m), .storage(let m), .transport(let m), .busy(let m), .diskFull(let m), .corrupt(let m),
             .server(_, let m):
            self.init(.storage, m)
        }
    }
}
