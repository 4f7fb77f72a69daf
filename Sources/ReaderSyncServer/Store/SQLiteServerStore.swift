import Dispatch
public import Foundation
import GRDB
public import ReaderSync

/// The default server store: one embedded SQLite database holding a server ``Replica`` (the same core that
/// devices run: knowledge, bundles, merge rules) and the server's accounts in a `server_account` table beside it.
///
/// It keeps nothing in memory between calls, so several server processes may share one file (WAL mode and a
/// busy timeout serialize their writes) and `readersync-server account revoke` takes effect at once in a
/// running server. ``inMemory(options:)`` makes a throwaway store for tests.
///
/// ```swift
/// let store = try SQLiteServerStore(path: "/var/lib/readersync/server.db")
/// let alice = try await store.addAccount(name: "alice", role: .reader)
/// print(alice.token)
/// ```
public final class SQLiteServerStore: ServerStore {
    /// The account name of the server's own replica (it signs imported articles); no user account may take it.
    public static let serverAccountName = "readersync-server"

    /// The server's replica (same package only: for tests and tools).
    package let replica: Replica
    let wallClock: any WallClock
    private let queue = DispatchQueue(label: "readersync.server.store", attributes: .concurrent)

    /// Opens the store at `path`; when there is no file there, creates one if `createIfMissing`, else throws.
    ///
    /// - Throws: ``ServerStoreError``: ``ServerStoreError/Kind/notFound`` for a missing file that is not to be
    ///   created; otherwise if the file is not a server store (for example a device replica), was made by a newer
    ///   version, or cannot be written.
    public convenience init(path: String, options: ReplicaOptions = ReplicaOptions(), createIfMissing: Bool = true) throws {
        let replica: Replica
        do {
            if FileManager.default.fileExists(atPath: path) {
                replica = try Replica.open(at: path, options: options)
            } else if createIfMissing {
                replica = try Replica.create(at: path, account: Self.serverAccountName, role: .server, options: options)
            } else {
                throw ServerStoreError(.notFound, "no server store at \(path): the file does not exist")
            }
        } catch let error as ReaderSyncError {
            throw ServerStoreError(error)
        }
        guard replica.role == .server else {
            throw ServerStoreError(.invalidInput,
                                   "\(path) is a device replica of account '\(replica.account)', not a server store; give the server its own file")
        }
        try self.init(replica: replica, wallClock: options.wallClock)
    }

    /// A store that lives in memory only, for tests.
    public static func inMemory(options: ReplicaOptions = ReplicaOptions()) throws -> SQLiteServerStore {
        do {
            let replica = try Replica.inMemory(account: serverAccountName, role: .server, options: options)
            return try SQLiteServerStore(replica: replica, wallClock: options.wallClock)
        } catch let error as ReaderSyncError {
            throw ServerStoreError(error)
        }
    }

    private init(replica: Replica, wallClock: any WallClock) throws {
        self.replica = replica
        self.wallClock = wallClock
        do {
            try ServerSchema.migrator().migrate(replica.database)
        } catch let error as DatabaseError {
            throw ServerStoreError(.storage, "cannot prepare the server tables: \(error.message ?? error.description)")
        }
    }

    // MARK: - Accounts

    /// The active account whose token this is, or nil.
    public func authenticate(token: String) async throws -> ServerAccount? {
        let hash = AccountTokens.hash(token)
        return try await run("authenticate") { db in
            try Row.fetchOne(db, sql: "SELECT * FROM server_account WHERE token_sha256 = ? AND revoked_at IS NULL",
                             arguments: [hash]).map(Self.account(row:))
        }
    }

    /// Adds an account; its name follows the replica account rules (letters, digits, `.`, `_`, `-`, `@`).
    public func addAccount(name: String, role: AccountRole) async throws -> NewAccount {
        do {
            try Account.validate(name)
        } catch let error as ReaderSyncError {
            throw ServerStoreError(error)
        }
        guard name != Self.serverAccountName else {
            throw ServerStoreError(.invalidInput, "'\(name)' is the server's own account name; choose another")
        }
        let token = AccountTokens.make()
        let now = wallClock.nowMillis()
        let account = ServerAccount(name: name, role: role, createdAt: Date(timeIntervalSince1970: Double(now) / 1000))
        try await run("add account \(name)", write: true) { db in
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM server_account WHERE name = ?", arguments: [name]) == true {
                throw ServerStoreError(.alreadyExists, "account '\(name)' already exists")
            }
            try db.execute(sql: """
                INSERT INTO server_account (name, role, token_sha256, created_at, revoked_at) VALUES (?, ?, ?, ?, NULL)
                """, arguments: [name, role.rawValue, AccountTokens.hash(token), now])
        }
        return NewAccount(account: account, token: token)
    }

    /// Every account, by name.
    public func accounts() async throws -> [ServerAccount] {
        try await run("list accounts") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM server_account ORDER BY name").map(Self.account(row:))
        }
    }

    /// Revokes an account's token.
    public func revokeAccount(name: String) async throws -> ServerAccount {
        let now = wallClock.nowMillis()
        return try await run("revoke account \(name)", write: true) { db in
            try db.execute(sql: "UPDATE server_account SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                           arguments: [now, name])
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM server_account WHERE name = ?", arguments: [name]) else {
                throw ServerStoreError(.notFound, "no account named '\(name)'")
            }
            return try Self.account(row: row)
        }
    }

    /// Gives an account a new token (re-activating it if it was revoked); the old token stops working at once,
    /// in every process sharing the store, since ``authenticate(token:)`` reads the store on every call.
    public func rotateToken(name: String) async throws -> NewAccount {
        let token = AccountTokens.make()
        let hash = AccountTokens.hash(token)
        let account = try await run("rotate the token of \(name)", write: true) { db in
            try db.execute(sql: "UPDATE server_account SET token_sha256 = ?, revoked_at = NULL WHERE name = ?",
                           arguments: [hash, name])
            guard db.changesCount > 0,
                  let row = try Row.fetchOne(db, sql: "SELECT * FROM server_account WHERE name = ?", arguments: [name]) else {
                throw ServerStoreError(.notFound, "no account named '\(name)'")
            }
            return try Self.account(row: row)
        }
        return NewAccount(account: account, token: token)
    }

    private static func account(row: Row) throws -> ServerAccount {
        guard let role = AccountRole(rawValue: row["role"]) else {
            throw ServerStoreError(.storage, "server_account row '\(row["name"] as String? ?? "?")' has an unknown role")
        }
        let created: Int64 = row["created_at"]
        let revoked: Int64? = row["revoked_at"]
        return ServerAccount(name: row["name"], role: role, createdAt: Date(timeIntervalSince1970: Double(created) / 1000),
                             revokedAt: revoked.map { Date(timeIntervalSince1970: Double($0) / 1000) })
    }

    // MARK: - Sync

    /// What `account`'s replicas may see of what the store holds.
    public func knowledge(for account: ServerAccount) async throws -> Knowledge {
        let replica = replica
        return try await offload { try replica.knowledge(visibleTo: account.name) }
    }

    /// Applies a pushed bundle atomically under the server's rules and `limits`:
    ///
    /// - the bundle's header must name the caller's account (a push labelled as another account's is refused);
    /// - only ranges of the caller's own replicas are taken; changes relayed from other accounts' replicas are
    ///   ignored (not held: they arrive when their authors sync), so read state of other accounts never enters;
    /// - article changes from a reader account are refused one by one (listed in the answer, not held);
    /// - a comment change nobody but the comment's author may make — a creation of an id bound to another
    ///   account, an edit or deletion of another author's comment — is refused one by one, the rest applies;
    /// - more new changes than ``PushLimits/maxChangesPerPush``, a comment text longer than
    ///   ``PushLimits/maxCommentLength``, or more new changes than what is left of the account's
    ///   ``PushLimits/maxChangesPerMinute`` refuse the whole bundle (see ``PushQuota``).
    ///
    /// Changes already held are skipped, so a retried push changes nothing more.
    public func push(_ bundle: Data, from account: ServerAccount, limits: PushLimits) async throws -> PushResponse {
        let replica = replica
        let caller = account.name
        let role = account.role
        let serverID = replica.replicaID
        let header: BundleHeader
        do {
            header = try Replica.inspectBundle(data: bundle)
        } catch let error as ReaderSyncError {
            throw ServerStoreError(error)
        }
        guard header.account.utf8.elementsEqual(caller.utf8) else {
            throw ServerStoreError(.forbidden,
                                   "the bundle says it was written by a replica of account '\(header.account)', but the token belongs to '\(caller)'; push with that account's token")
        }
        let reservation = try await reserveQuota(for: caller, limits: limits)
        let counter = PushCounter(limits: limits, budget: reservation?.changes)
        let policy = ApplyPolicy(
            privateAccount: caller,
            acceptOrigin: { origin, owner in owner.utf8.elementsEqual(caller.utf8) && origin != serverID },
            screen: { change, context in
                try counter.count(change)
                return try Self.refusal(of: change, caller: caller, role: role, context: context) == nil
            })
        let response: PushResponse
        do {
            response = try await offload {
                let result = try replica.applyBundle(data: bundle, policy: policy)
                let refused = try replica.withApplyContext { context in
                    try result.refused.map { change in
                        RefusedChange(change, reason: try Self.refusal(of: change, caller: caller, role: role, context: context)
                            ?? "refused by the server")
                    }
                }
                return PushResponse(knowledge: try replica.knowledge(visibleTo: caller), received: result.received,
                                    applied: result.applied, duplicates: result.duplicates, ignored: result.ignored,
                                    refused: refused)
            }
        } catch let error as ServerStoreError where error.kind == .rateLimited {
            // Over what was left of this minute's budget: say when a whole push fits again.
            try await settleQuota(reservation, counted: 0)
            throw try await rateLimitedError(for: caller, limits: limits, budget: reservation?.changes ?? 0)
        } catch {
            try await settleQuota(reservation, counted: 0)
            throw error
        }
        try await settleQuota(reservation, counted: counter.counted)
        return response
    }

    /// Why the server refuses one pushed change, or nil when it takes it.
    static func refusal(of change: Change, caller: String, role: AccountRole, context: ApplyContext) throws -> String? {
        switch change.entity {
        case .article:
            return role == .editor ? nil : "account \(caller) is a reader; only editors publish articles (kept on your device)"
        case .readState:
            return nil
        case .comment:
            if let bound = Keys.boundAccount(ofCommentID: change.key) {
                return bound.utf8.elementsEqual(caller.utf8) ? nil
                    : "comment \(change.key) belongs to account \(bound); only its author can create or change it"
            }
            // An id not bound to an account (written by older versions): its first creation names the author.
            if let author = try context.commentAuthor(change.key) {
                return author.utf8.elementsEqual(caller.utf8) ? nil
                    : "comment \(change.key) was written by \(author); only its author can change it"
            }
            return nil
        }
    }

    /// The most bytes of keys and values (before compression) one pull page carries; a page always holds at
    /// least one change, so one large article still moves.
    public static let maxPullPageBytes = 8 << 20

    /// A page of what `knowledge` lacks, for `account`: at most `maxChanges` changes and about
    /// ``maxPullPageBytes`` bytes.
    public func pull(knowledge: Knowledge, for account: ServerAccount, maxChanges: Int) async throws -> PullPage {
        let replica = replica
        return try await offload {
            let missing = try replica.changeCount(missingFrom: knowledge, account: account.name)
            let (data, summary) = try replica.exportBundleData(for: knowledge, account: account.name, maxChanges: maxChanges,
                                                               maxBytes: Self.maxPullPageBytes)
            // Counted before the export, outside its read: a push landing between them only makes the count stale
            // by that push, and the count is for progress only.
            let remaining = summary.isComplete ? 0 : max(0, missing - Int(summary.header.changeCount))
            return PullPage(bundle: data, isComplete: summary.isComplete, remainingChanges: remaining)
        }
    }

    /// The bodies of the articles `ids`, read one article at a time from the server's replica (which never evicts
    /// a body), so that no more than `maxBytes` plus one body is read whatever the ids ask.
    public func articleBodies(_ ids: [String], maxBytes: Int) async throws -> ArticleBodiesAnswer {
        let replica = replica
        return try await offload {
            var answer = ArticleBodiesAnswer()
            var seen = Set<Data>()
            var bytes = 0
            for id in ids where seen.insert(Data(id.utf8)).inserted {
                if bytes >= maxBytes && !answer.bodies.isEmpty {
                    answer.truncated.append(id)
                } else if let body = try replica.articleBodies([id]).first {
                    answer.bodies.append(body)
                    bytes += body.body.utf8.count
                } else {
                    answer.missing.append(id)
                }
            }
            return answer
        }
    }

    /// Publishes articles to every account.
    public func importArticles(_ articles: [Article]) async throws -> UpsertSummary {
        let replica = replica
        return try await offload { try replica.upsertArticles(articles) }
    }

    /// The canonical dump of the store.
    public func canonicalDump(account: String?) async throws -> Data {
        let replica = replica
        return try await offload { try replica.canonicalDump(account: account) }
    }

    // MARK: - Plumbing

    /// Runs blocking SQLite work off the caller's executor, mapping errors to ``ServerStoreError``.
    func offload<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                do {
                    continuation.resume(returning: try body())
                } catch let error as ServerStoreError {
                    continuation.resume(throwing: error)
                } catch let error as ReaderSyncError {
                    continuation.resume(throwing: ServerStoreError(error))
                } catch let error as DatabaseError {
                    continuation.resume(throwing: ServerStoreError(.storage, error.message ?? error.description))
                } catch {
                    continuation.resume(throwing: ServerStoreError(.storage, "\(error)"))
                }
            }
        }
    }

    /// Runs a read (or a write transaction) on the server's tables.
    func run<T: Sendable>(_ what: String, write: Bool = false,
                                  _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        let writer = replica.database
        do {
            return try await offload {
                write ? try writer.write(body) : try writer.read(body)
            }
        } catch let error as ServerStoreError where error.kind == .storage {
            throw ServerStoreError(.storage, "\(what): \(error.message)")
        }
    }
}
