public import Foundation
package import GRDB
import Synchronization

/// Whether a replica is a user's device or a sync server's store.
public enum ReplicaRole: String, Sendable, Codable {
    /// A device of one account: holds shared data and its own account's read state.
    case device
    /// A sync server: holds shared data and every account's read state, and hands each account only its own.
    case server
}

/// Settings of an opened replica: the clock, the id generator and sync bounds.
public struct ReplicaOptions: Sendable {
    /// Where wall-clock time comes from; the hybrid logical clock builds on it.
    public var wallClock: any WallClock
    /// The clock rules' bounds: the floor, how far the clock follows received changes ahead of the wall clock,
    /// and how far ahead a received change may be stamped (`Schemas/merge-rules.md`, "Clocks").
    public var clockBounds: ClockBounds
    /// Makes the unique part of ids for new comments (the replica's account and `:` go before it).
    /// Default: a random lowercase UUID.
    public var makeID: @Sendable () -> String
    /// How long (seconds) to wait for another process holding the write lock. Default 10.
    public var busyTimeout: TimeInterval
    /// Open the file read-only even when this process may write it (for example an app extension that only
    /// shows the feed). A file this process may not write is always opened read-only. Default false.
    public var readOnly: Bool

    /// Creates options; every parameter has a production default.
    public init(wallClock: any WallClock = SystemWallClock(),
                clockBounds: ClockBounds = ClockBounds(),
                makeID: @escaping @Sendable () -> String = { UUID().uuidString.lowercased() },
                busyTimeout: TimeInterval = 10,
                readOnly: Bool = false) {
        self.wallClock = wallClock
        self.clockBounds = clockBounds
        self.makeID = makeID
        self.busyTimeout = busyTimeout
        self.readOnly = readOnly
    }
}

/// One replica: a device's (or the server's) copy of articles, comments and read state, with its change log.
///
/// Every mutation records its change-log entries in the same SQLite transaction as the data. A replica file
/// may be used by several processes at once (WAL mode, busy timeout). All methods are synchronous and
/// thread-safe; call them off the main thread in an app.
///
/// ```swift
/// let replica = try Replica.create(at: "/path/reader.db", account: "alice")
/// try replica.upsertArticles(articles)
/// try replica.markRead("some-article")
/// let feed = try replica.feed(FeedQuery(unreadOnly: true))
/// ```
public final class Replica: Sendable {
    /// This replica's id. It changes only when the replica finds it was restored from a backup or copied, and
    /// continues under a new identity (`Schemas/merge-rules.md`, "Identity").
    public var replicaID: ReplicaID { identity.withLock { $0 } }
    /// The account this replica belongs to.
    public let account: String
    /// Device or server.
    public let role: ReplicaRole
    /// The database file, or nil for an in-memory replica.
    public let path: String?
    /// Whether the replica was opened read-only (its file is not writable): reads work, changes are refused.
    public let isReadOnly: Bool

    /// The database, for the reference server's own tables (same package only; not an app API).
    package var database: any DatabaseWriter { writer }

    let writer: any DatabaseWriter
    let options: ReplicaOptions
    let observers = Observers()
    private let identity: Mutex<ReplicaID>
    /// This object's incarnation: a random number recorded with the first change it writes, so that another copy
    /// of the same file (a backup restored, a copied file) never writes the same history (see `Identity.swift`).
    let incarnation: UInt64

    private init(writer: any DatabaseWriter, path: String?, options: ReplicaOptions, readOnly: Bool = false) throws {
        self.writer = writer
        self.path = path
        self.options = options
        self.isReadOnly = readOnly
        var generator = SystemRandomNumberGenerator()
        incarnation = UInt64.random(in: 1...UInt64.max, using: &generator)
        let row = try Self.guarded("read replica identity") {
            try writer.read { db -> Row? in
                try Row.fetchOne(db, sql: """
                    SELECT o.replica_id, a.name AS account, r.role FROM replica r
                    JOIN origin o ON o.id = r.origin_id JOIN account a ON a.id = o.account_id
                    """)
            }
        }
        guard let row, let blob = row["replica_id"] as Data?, let id = ReplicaID(bytes: blob),
              let role = ReplicaRole(rawValue: row["role"]) else {
            throw ReaderSyncError.incompatibleReplica("\(path ?? "in-memory replica") has no replica identity; it is not a ReaderSync replica")
        }
        identity = Mutex(id)
        self.account = row["account"]
        self.role = role
    }

    /// Takes note of the identity the store holds (after this or another process changed it).
    func noteIdentity(_ id: ReplicaID) {
        identity.withLock { $0 = id }
    }

    // MARK: - Opening

    /// Creates a new replica file for `account`.
    ///
    /// - Throws: ``ReaderSyncError`` if the file already exists, cannot be written, or the name is invalid.
    public static func create(at path: String, account: String, role: ReplicaRole = .device,
                              options: ReplicaOptions = ReplicaOptions()) throws -> Replica {
        try Account.validate(account)
        if FileManager.default.fileExists(atPath: path) {
            throw ReaderSyncError.invalidInput("\(path) already exists; open it instead of creating it")
        }
        let dir = (URL(fileURLWithPath: path).deletingLastPathComponent().path)
        guard FileManager.default.isWritableFile(atPath: dir.isEmpty ? "." : dir) else {
            throw ReaderSyncError.storage("cannot create replica at \(path): directory \(dir) is not writable or does not exist")
        }
        do {
            let pool = try DatabasePool(path: path, configuration: configuration(options))
            try initialize(pool, account: account, role: role, options: options)
            return try Replica(writer: pool, path: path, options: options)
        } catch let error as DatabaseError {
            try? FileManager.default.removeItem(atPath: path)
            throw ReaderSyncError(error, context: "cannot create replica at \(path)")
        }
    }

    /// Opens an existing replica file, migrating an older schema forward.
    ///
    /// A file that is not a replica, or one made by a newer version, is refused and left untouched. A file this
    /// process may not write is opened read-only (when its schema is current).
    /// - Throws: ``ReaderSyncError/incompatibleReplica(_:)``, ``ReaderSyncError/notFound(_:)``.
    public static func open(at path: String, options: ReplicaOptions = ReplicaOptions()) throws -> Replica {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ReaderSyncError.notFound("no replica at \(path)")
        }
        guard !isDirectory.boolValue else {
            throw ReaderSyncError.incompatibleReplica("\(path) is a directory, not a ReaderSync replica")
        }
        let version = try inspect(path: path, options: options)
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let writable = !options.readOnly && FileManager.default.isWritableFile(atPath: path)
            && FileManager.default.isWritableFile(atPath: directory.isEmpty ? "." : directory)
        if !writable {
            guard version == StoreSchema.currentVersion else {
                throw ReaderSyncError.incompatibleReplica(
                    "\(path) has store schema v\(version) and must be upgraded to v\(StoreSchema.currentVersion), but it is read-only; open it once with write access")
            }
            return try guarded("open replica \(path) read-only") {
                var config = configuration(options)
                config.readonly = true
                let queue = try DatabaseQueue(path: path, configuration: config)
                return try Replica(writer: queue, path: path, options: options, readOnly: true)
            }
        }
        do {
            let pool = try DatabasePool(path: path, configuration: configuration(options))
            try StoreSchema.migrator().migrate(pool)
            return try Replica(writer: pool, path: path, options: options)
        } catch let error as DatabaseError {
            throw ReaderSyncError(error, context: "cannot open replica \(path)")
        }
    }

    /// Opens the replica at `url`, creating it for `account` when no file is there yet (an app's first launch).
    ///
    /// - Throws: ``ReaderSyncError/invalidInput(_:)`` when the file there belongs to another account;
    ///   the errors of ``open(at:options:)-(String,_)`` and ``create(at:account:role:options:)-(String,_,_,_)``.
    public static func openOrCreate(at url: URL, account: String, options: ReplicaOptions = ReplicaOptions()) throws -> Replica {
        let path = url.path
        guard FileManager.default.fileExists(atPath: path) else {
            return try create(at: path, account: account, options: options)
        }
        let replica = try open(at: path, options: options)
        guard replica.account.utf8.elementsEqual(account.utf8) else {
            throw ReaderSyncError.invalidInput("\(path) is a replica of account '\(replica.account)', not '\(account)'")
        }
        return replica
    }

    /// Creates a replica that lives in memory only: for tests, previews and simulations.
    public static func inMemory(account: String, role: ReplicaRole = .device,
                                replicaID: ReplicaID = .random(),
                                options: ReplicaOptions = ReplicaOptions()) throws -> Replica {
        try Account.validate(account)
        return try guarded("create in-memory replica") {
            let queue = try DatabaseQueue(configuration: configuration(options))
            try initialize(queue, account: account, role: role, replicaID: replicaID, options: options)
            return try Replica(writer: queue, path: nil, options: options)
        }
    }

    private static func configuration(_ options: ReplicaOptions) -> Configuration {
        var config = Configuration()
        config.busyMode = .timeout(options.busyTimeout)
        config.foreignKeysEnabled = true
        return config
    }

    private static func initialize(_ writer: any DatabaseWriter, account: String, role: ReplicaRole,
                                   replicaID: ReplicaID = .random(), options: ReplicaOptions) throws {
        try StoreSchema.migrator().migrate(writer)
        try writer.write { db in
            let now = options.wallClock.nowMillis()
            let tx = StoreTransaction(db)
            guard let origin = try tx.origin(replicaID, account: account, create: true) else {
                throw ReaderSyncError.storage("cannot record the replica's identity")
            }
            try db.execute(sql: """
                INSERT INTO replica (singleton, origin_id, role, created_at, clock, last_seq) VALUES (1, ?, ?, ?, 0, 0)
                """, arguments: [origin.row, role.rawValue, now])
        }
    }

    /// Checks, read-only, that `path` is a replica this build can open; returns its schema version.
    private static func inspect(path: String, options: ReplicaOptions) throws -> Int {
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        if size == 0 {
            throw ReaderSyncError.incompatibleReplica(
                "\(path) is an empty file, not a ReaderSync replica; remove it, or create a replica in its place")
        }
        var config = Configuration()
        config.readonly = true
        // Another process may hold the write lock or be checkpointing: wait for it like any other access.
        config.busyMode = .timeout(options.busyTimeout)
        let appID: Int32
        let version: Int
        let tables: Int
        do {
            let queue = try DatabaseQueue(path: path, configuration: config)
            (appID, version, tables) = try queue.read { db in
                (try Int32.fetchOne(db, sql: "PRAGMA application_id") ?? 0,
                 try Int.fetchOne(db, sql: "PRAGMA user_version") ?? 0,
                 try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sqlite_master") ?? 0)
            }
            try queue.close()
        } catch let error as DatabaseError {
            if error.resultCode == .SQLITE_NOTADB {
                throw ReaderSyncError.incompatibleReplica("\(path) is not a ReaderSync replica (not a SQLite database)")
            }
            throw ReaderSyncError.incompatibleReplica("cannot read \(path): \(error.message ?? error.description)")
        }
        guard appID == StoreSchema.applicationID, tables > 0 else {
            throw ReaderSyncError.incompatibleReplica("\(path) is not a ReaderSync replica (it is some other SQLite database)")
        }
        guard version <= StoreSchema.currentVersion else {
            throw ReaderSyncError.incompatibleReplica(
                "\(path) was created by a newer ReaderSync (store schema v\(version); this build reads up to v\(StoreSchema.currentVersion)); upgrade ReaderSync to open it")
        }
        return version
    }

    // MARK: - Error funnel

    /// Runs `body`, turning SQLite errors into ``ReaderSyncError/storage(_:)`` with context.
    static func guarded<T>(_ what: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as ReaderSyncError {
            throw error
        } catch let error as DatabaseError {
            throw ReaderSyncError(error, context: what)
        }
    }

    /// A write transaction; any error rolls it back whole. A cancelled async call does not start one
    /// (``Cancellation``).
    func write<T>(_ what: String, _ body: (Database) throws -> T) throws -> T {
        guard !isReadOnly else {
            throw ReaderSyncError.storage("cannot \(what): \(path ?? "the replica") is read-only")
        }
        try Cancellation.check()
        return try Self.guarded(what) { try writer.write(body) }
    }

    /// A read. A cancelled async call does not start one.
    func read<T>(_ what: String, _ body: (Database) throws -> T) throws -> T {
        try Cancellation.check()
        return try Self.guarded(what) { try writer.read(body) }
    }

    /// The schema this build writes.
    public static var schemaVersion: Int { StoreSchema.currentVersion }

    /// The schema as SQL (what `Schemas/store-schema.sql` holds).
    public func schemaSQL() throws -> String {
        try read("read schema") { try StoreSchema.dumpSQL($0) }
    }
}

// MARK: - Observation

/// Something changed in a replica: which articles, comments and read states.
public struct ReplicaEvent: Sendable, Equatable {
    /// Where the change came from.
    public enum Origin: Sendable, Equatable {
        /// A mutation made through this `Replica` object.
        case local
        /// A bundle merged into it.
        case merged
    }
    /// Where it came from.
    public var origin: Origin
    /// Articles whose content changed.
    public var articleIDs: Set<String>
    /// Comments that changed.
    public var commentIDs: Set<String>
    /// Articles whose read state changed.
    public var readStateArticleIDs: Set<String>
    /// True when more changed than the event lists (a large merge): refresh everything instead.
    public var isTruncated: Bool = false

    /// The most ids one event lists; a larger merge sets ``isTruncated``.
    public static let maxListedIDs = 10_000
}

final class Observers: Sendable {
    private struct Subscriber {
        weak var queue: EventQueue?
    }
    private let subscribers = Mutex<[Subscriber]>([])

    /// A new subscriber's queue; it is dropped from the list once its stream is gone.
    func add() -> EventQueue {
        let queue = EventQueue()
        subscribers.withLock { list in
            list.removeAll { $0.queue == nil }
            list.append(Subscriber(queue: queue))
        }
        return queue
    }

    func send(_ event: ReplicaEvent) {
        guard event.isTruncated || !(event.articleIDs.isEmpty && event.commentIDs.isEmpty && event.readStateArticleIDs.isEmpty) else { return }
        for queue in subscribers.withLock({ $0.compactMap(\.queue) }) { queue.push(event) }
    }
}

/// One subscriber's events, waiting to be read. A subscriber that falls behind never loses one: consecutive
/// events of the same origin merge into one, and past ``maxQueued`` waiting events everything waiting merges
/// into one (`.merged`, the ids of all, ``ReplicaEvent/isTruncated`` once they exceed
/// ``ReplicaEvent/maxListedIDs``).
final class EventQueue: Sendable {
    private struct State {
        var events: [ReplicaEvent] = []
        var waiter: CheckedContinuation<ReplicaEvent?, Never>?
        var finished = false
    }
    private let state = Mutex(State())
    static let maxQueued = 64

    func push(_ event: ReplicaEvent) {
        let waiter = state.withLock { state -> CheckedContinuation<ReplicaEvent?, Never>? in
            guard !state.finished else { return nil }
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            if let last = state.events.indices.last, state.events[last].origin == event.origin {
                state.events[last].absorb(event)
            } else if state.events.count >= Self.maxQueued {
                var all = state.events.removeFirst()
                for waiting in state.events { all.absorb(waiting) }
                all.absorb(event)
                state.events = [all]
            } else {
                state.events.append(event)
            }
            return nil
        }
        waiter?.resume(returning: event)
    }

    /// The next event, waiting for one; nil once finished.
    func next() async -> ReplicaEvent? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<ReplicaEvent?, Never>) in
                let ready = state.withLock { state -> ReplicaEvent?? in
                    if !state.events.isEmpty { return .some(state.events.removeFirst()) }
                    if state.finished { return .some(nil) }
                    state.waiter = continuation
                    return .none
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            finish()
        }
    }

    /// Ends the stream: a waiting reader gets nil.
    func finish() {
        let waiter = state.withLock { state -> CheckedContinuation<ReplicaEvent?, Never>? in
            state.finished = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: nil)
    }
}

extension ReplicaEvent {
    /// Takes in a later event: the ids of both; `.merged` when the origins differ; truncated past
    /// ``maxListedIDs``.
    mutating func absorb(_ other: ReplicaEvent) {
        if other.origin != origin { origin = .merged }
        // Once truncated, the lists stop growing: a stream nobody reads holds a bounded amount.
        guard !isTruncated else { return }
        articleIDs.formUnion(other.articleIDs)
        commentIDs.formUnion(other.commentIDs)
        readStateArticleIDs.formUnion(other.readStateArticleIDs)
        isTruncated = other.isTruncated
            || articleIDs.count + commentIDs.count + readStateArticleIDs.count > Self.maxListedIDs
    }
}

extension Replica {
    /// A stream of events, one per committed mutation or merged bundle that changed something, so an app can
    /// refresh what it shows. Events from other processes using the same file are not seen (use the live
    /// queries, ``observeFeed(_:pollInterval:)``, for those).
    ///
    /// Nothing is dropped: while the reader is busy, consecutive events of the same origin merge into one (the
    /// union of their ids), and a reader far behind gets everything waiting merged into one event — its ids
    /// may then be a superset, and past ``ReplicaEvent/maxListedIDs`` it says ``ReplicaEvent/isTruncated``
    /// (refresh everything). The stream ends when the task reading it is cancelled.
    public func events() -> AsyncStream<ReplicaEvent> {
        let queue = observers.add()
        return AsyncStream(unfolding: { await queue.next() }, onCancel: { queue.finish() })
    }
}
