public import Foundation
import GRDB

/// What an export put into a bundle.
public struct BundleExportSummary: Sendable, Equatable {
    /// The bundle's header.
    public var header: BundleHeader
    /// Bytes of the whole bundle (header and compressed payload).
    public var bytes: Int
    /// Whether the bundle holds everything the receiver lacked (false: a page; export again for the rest).
    public var isComplete: Bool
}

/// What applying a bundle did.
public struct BundleApplyResult: Sendable, Equatable {
    /// Changes the bundle carried.
    public var received: Int = 0
    /// Changes that were new here and were merged.
    public var applied: Int = 0
    /// Changes this replica already held (a duplicated or overlapping bundle).
    public var duplicates: Int = 0
    /// Changes the receiver refused to take (for example article edits from a reader account, at a server);
    /// the rest of the bundle was applied.
    public var refused: [Change] = []
    /// Changes of origins the receiver does not take from this sender (a server takes only the pushing
    /// account's own replicas' changes); they were not applied and are not counted as held.
    public var ignored: Int = 0
}

/// What a policy's screen may read while a bundle is being applied: the receiver's state inside the apply
/// transaction, so a check and the apply see the same database.
package struct ApplyContext {
    let db: Database

    /// The author of a comment the receiver held before this bundle (or from an earlier batch of it), or nil.
    package func commentAuthor(_ commentID: String) throws -> String? {
        try String.fetchOne(db, sql: "SELECT author FROM comment WHERE id = ?", arguments: [commentID])
    }
}

/// How a receiver screens incoming changes (a server checks rights per change).
package struct ApplyPolicy: Sendable {
    /// Which account's private (read state) changes may be received; nil: any account's (a server).
    package var privateAccount: String?
    /// Called for each new change with its origin's account and the receiver's state: return false to refuse
    /// just that change, throw to refuse the whole bundle.
    package var screen: @Sendable (Change, String, ApplyContext) throws -> Bool
    /// Called for each origin in the bundle with its account: return false to ignore every range and change of
    /// that origin (nothing of it is applied and knowledge of it does not advance, so it can come later).
    package var acceptOrigin: @Sendable (ReplicaID, String) -> Bool

    package init(privateAccount: String?,
                 acceptOrigin: @escaping @Sendable (ReplicaID, String) -> Bool = { _, _ in true },
                 screen: @escaping @Sendable (Change, String, ApplyContext) throws -> Bool = { _, _, _ in true }) {
        self.privateAccount = privateAccount
        self.acceptOrigin = acceptOrigin
        self.screen = screen
    }
}

extension Replica {
    // MARK: - Export

    /// Writes a bundle of the changes `theirs` lacks to `url`.
    ///
    /// - Parameters:
    ///   - theirs: the receiver's knowledge; an empty ``Knowledge`` exports everything held.
    ///   - account: the receiver's account. Read state goes only to replicas of its own account: read state of
    ///     other accounts is never exported; pass nil to export no read state at all.
    ///   - maxChanges: at most this many changes (a page); the summary says whether more remain.
    ///   - maxBytes: stop adding changes once their values and keys add up to about this many bytes (before
    ///     compression); a page always holds at least one change.
    ///   - progress: called every 1000 changes written into the bundle and once at the end, with the file's size
    ///     (phase `.exporting`).
    public func exportBundle(to url: URL, for theirs: Knowledge, account: String?, maxChanges: Int? = nil,
                             maxBytes: Int? = nil, progress: ProgressHandler? = nil) throws -> BundleExportSummary {
        let (writer, complete) = try prepareExport(for: theirs, account: account, maxChanges: maxChanges, maxBytes: maxBytes,
                                                   progress: progress)
        let header = try Self.guarded("write bundle") { try writer.finish(to: url) }
        let bytes = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
        progress?(OperationProgress(phase: .exporting, completed: Int(header.changeCount), total: Int(header.changeCount),
                                    bytes: Int64(bytes), totalBytes: Int64(bytes), isComplete: true))
        return BundleExportSummary(header: header, bytes: bytes, isComplete: complete)
    }

    /// Builds a bundle of the changes `theirs` lacks, in memory.
    /// See ``exportBundle(to:for:account:maxChanges:maxBytes:)``.
    public func exportBundleData(for theirs: Knowledge, account: String?, maxChanges: Int? = nil,
                                 maxBytes: Int? = nil) throws -> (data: Data, summary: BundleExportSummary) {
        let (writer, complete) = try prepareExport(for: theirs, account: account, maxChanges: maxChanges, maxBytes: maxBytes)
        let (header, data) = try Self.guarded("write bundle") { try writer.finishData() }
        return (data, BundleExportSummary(header: header, bytes: data.count, isComplete: complete))
    }

    private func prepareExport(for theirs: Knowledge, account receiver: String?, maxChanges: Int?,
                               maxBytes: Int?, progress: ProgressHandler? = nil) throws -> (BundleWriter, Bool) {
        if let maxChanges, maxChanges < 1 {
            throw ReaderSyncError.invalidInput("a bundle page must hold at least one change, got \(maxChanges)")
        }
        if let maxBytes, maxBytes < 1 {
            throw ReaderSyncError.invalidInput("a bundle page must allow at least one byte, got \(maxBytes)")
        }
        var byteBudget = maxBytes ?? Int.max
        var selectedAny = false
        return try read("export bundle") { db in
            let origins = try Row.fetchAll(db, sql: """
                SELECT o.id, o.replica_id, o.account, k.scope, k.seq
                FROM knowledge k JOIN origin o ON o.id = k.origin_id
                ORDER BY o.replica_id, k.scope
                """)
            struct Plan { var originRow: Int64; var range: KnowledgeRange; var account: String }
            var plans: [Plan] = []
            for row in origins {
                guard let origin = ReplicaID(string: row["replica_id"]),
                      let scope = ChangeScope(rawValue: UInt8(clamping: row["scope"] as Int)) else {
                    throw ReaderSyncError.storage("knowledge table is corrupt")
                }
                let originAccount: String = row["account"]
                if scope == .private && (receiver == nil || originAccount != receiver) { continue }
                let mine = UInt64(bitPattern: row["seq"])
                let have = theirs.seq(origin: origin, scope: scope)
                guard mine > have else { continue }
                plans.append(Plan(originRow: row["id"], range: KnowledgeRange(origin: origin, scope: scope, from: have, to: mine),
                                  account: originAccount))
            }
            // Select the changes first so a page can end a range early.
            var budget = maxChanges ?? Int.max
            var complete = true
            var selected: [(plan: Plan, changes: [Change])] = []
            for var plan in plans {
                if budget == 0 { complete = false; break }
                let entity = plan.range.scope == .private ? "c.entity = 3" : "c.entity IN (1, 2)"
                let rows = try Row.fetchCursor(db, sql: """
                    SELECT c.seq, c.hlc, c.entity, c.key, c.field, c.value_type, c.value FROM change_log c
                    WHERE c.origin_id = ? AND c.seq > ? AND c.seq <= ? AND \(entity)
                    ORDER BY c.seq
                    """, arguments: [plan.originRow, Int64(bitPattern: plan.range.from), Int64(bitPattern: plan.range.to)])
                var changes: [Change] = []
                while let row = try rows.next() {
                    let key: String = row["key"]
                    let value: DatabaseValue = row["value"]
                    var size = key.utf8.count + 32
                    if case .string(let text) = value.storage { size += text.utf8.count }
                    if changes.count == budget || (selectedAny && size > byteBudget) {
                        // The page is full: this range ends just before the change that did not fit.
                        plan.range.to = changes.last?.seq ?? plan.range.from
                        complete = false
                        break
                    }
                    guard let entity = EntityKind(rawValue: UInt8(clamping: row["entity"] as Int)) else {
                        throw ReaderSyncError.storage("change log holds an unknown entity kind")
                    }
                    byteBudget -= min(size, byteBudget)
                    selectedAny = true
                    changes.append(Change(origin: plan.range.origin, seq: UInt64(bitPattern: row["seq"]),
                                          hlc: HLCTimestamp(rawValue: UInt64(bitPattern: row["hlc"])), entity: entity,
                                          key: key, field: row["field"],
                                          value: try ChangeValue(typeTag: row["value_type"], databaseValue: value)))
                }
                budget -= changes.count
                if plan.range.to > plan.range.from { selected.append((plan, changes)) }
                if !complete { break }
            }
            var originInfos: [BundleOriginInfo] = []
            var seenOrigins = Set<ReplicaID>()
            for (plan, _) in selected where seenOrigins.insert(plan.range.origin).inserted {
                originInfos.append(BundleOriginInfo(id: plan.range.origin, account: plan.account))
            }
            let writer = try BundleWriter(source: replicaID, account: account,
                                          schemaVersion: UInt16(StoreSchema.currentVersion),
                                          origins: originInfos, ranges: selected.map(\.plan.range))
            let total = selected.reduce(0) { $0 + $1.changes.count }
            var written = 0
            for (_, changes) in selected {
                for change in changes {
                    try writer.append(change)
                    written += 1
                    if written % 1000 == 0 {
                        progress?(OperationProgress(phase: .exporting, completed: written, total: total))
                    }
                }
            }
            return (writer, complete)
        }
    }

    // MARK: - Apply

    /// Merges a bundle file into this replica: whole or not at all.
    ///
    /// Changes already held are skipped, so applying a bundle twice, or one that overlaps what is held, is safe.
    /// - Parameter progress: called every 1000 changes read from the bundle and once at the end (phase
    ///   `.applying`, with the bundle's change count as `total` and its size as `totalBytes`).
    /// - Throws: ``ReaderSyncError/invalidBundle(_:)`` (malformed, corrupt, another account's read state),
    ///   ``ReaderSyncError/missingChanges(_:)`` (a gap), ``ReaderSyncError/clockSkew(_:)``. Nothing changes then.
    @discardableResult
    public func applyBundle(at url: URL, progress: ProgressHandler? = nil) throws -> BundleApplyResult {
        let reader = try Self.guarded("read bundle") { try BundleReader(url: url) }
        return try apply(reader, policy: defaultPolicy, progress: progress)
    }

    /// Merges an in-memory bundle. See ``applyBundle(at:)``.
    @discardableResult
    public func applyBundle(data: Data) throws -> BundleApplyResult {
        let reader = try Self.guarded("read bundle") { try BundleReader(data: data) }
        return try apply(reader, policy: defaultPolicy)
    }

    /// Reads a bundle file's header without applying it (checksum verified).
    public static func inspectBundle(at url: URL) throws -> BundleHeader {
        try guarded("read bundle") { try BundleReader(url: url).header }
    }

    /// Merges an in-memory bundle under a receiver's policy (a server's rights checks).
    @discardableResult
    package func applyBundle(data: Data, policy: ApplyPolicy) throws -> BundleApplyResult {
        let reader = try Self.guarded("read bundle") { try BundleReader(data: data) }
        return try apply(reader, policy: policy)
    }

    /// Merges a bundle file under a receiver's policy.
    @discardableResult
    package func applyBundle(at url: URL, policy: ApplyPolicy) throws -> BundleApplyResult {
        let reader = try Self.guarded("read bundle") { try BundleReader(url: url) }
        return try apply(reader, policy: policy)
    }

    private var defaultPolicy: ApplyPolicy {
        ApplyPolicy(privateAccount: role == .server ? nil : account)
    }

    func apply(_ reader: BundleReader, policy: ApplyPolicy, progress: ProgressHandler? = nil) throws -> BundleApplyResult {
        var result = BundleApplyResult()
        let total = Int(clamping: reader.header.changeCount)
        func report(complete: Bool) {
            progress?(OperationProgress(phase: .applying, completed: result.received, total: total,
                                        totalBytes: Int64(reader.totalBytes), isComplete: complete))
        }
        // Targets are materialized in batches as changes arrive (materializing is idempotent, so a target touched
        // again later is simply recomputed), and the event keeps a bounded number of ids: applying a bundle of any
        // size holds one decoded block and one batch of targets in memory.
        var touched = Set<MergeTarget>()
        let batch = 4096
        var event = ReplicaEvent(changes: [], origin: .merged)
        try write("apply bundle") { db in
            let header = reader.header
            guard Int(header.schemaVersion) <= StoreSchema.currentVersion else {
                throw ReaderSyncError.invalidBundle(
                    "bundle was written with store schema v\(header.schemaVersion); this build knows up to v\(StoreSchema.currentVersion); upgrade ReaderSync")
            }
            let mine = try knowledge(db)
            // Origins: ids and accounts must agree with what this replica already knows.
            var originRow: [ReplicaID: Int64] = [:]
            var originAccount: [ReplicaID: String] = [:]
            var ignored = Set<ReplicaID>()
            for info in header.origins {
                guard policy.acceptOrigin(info.id, info.account) else {
                    ignored.insert(info.id)
                    continue
                }
                if let row = try Row.fetchOne(db, sql: "SELECT id, account FROM origin WHERE replica_id = ?",
                                              arguments: [info.id.description]) {
                    let known: String = row["account"]
                    guard known == info.account else {
                        throw ReaderSyncError.invalidBundle(
                            "bundle says replica \(info.id) belongs to account '\(info.account)', but it is known here as '\(known)'")
                    }
                    originRow[info.id] = row["id"]
                } else {
                    try Account.validate(info.account)
                    try db.execute(sql: "INSERT INTO origin (replica_id, account) VALUES (?, ?)",
                                   arguments: [info.id.description, info.account])
                    originRow[info.id] = db.lastInsertedRowID
                }
                originAccount[info.id] = info.account
            }
            // Ranges: no other account's read state, and no gap.
            for range in header.ranges where !ignored.contains(range.origin) {
                guard let account = originAccount[range.origin] else {
                    throw ReaderSyncError.invalidBundle("bundle range names replica \(range.origin), which is not in its origin table")
                }
                if range.scope == .private, let allowed = policy.privateAccount, account != allowed {
                    throw ReaderSyncError.invalidBundle(
                        "bundle carries read state of account '\(account)' (replica \(range.origin)); this replica belongs to '\(allowed)'")
                }
                let have = mine.seq(origin: range.origin, scope: range.scope)
                if range.from > have {
                    throw ReaderSyncError.missingChanges(
                        "bundle starts after changes this replica lacks: replica \(range.origin) (\(range.scope)) changes \(have + 1)...\(range.from); sync with a replica that holds them first")
                }
            }
            guard let clockRow = try Row.fetchOne(db, sql: "SELECT clock FROM replica") else {
                throw ReaderSyncError.storage("replica row is missing")
            }
            var clock = HybridLogicalClock(latest: HLCTimestamp(rawValue: UInt64(bitPattern: clockRow["clock"])))
            let wall = options.wallClock.nowMillis()
            let insert = try db.cachedStatement(sql: """
                INSERT OR IGNORE INTO change_log (origin_id, seq, hlc, entity, account, key, field, value_type, value)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
            while let change = try reader.next() {
                result.received += 1
                if result.received % 1000 == 0 { report(complete: false) }
                if ignored.contains(change.origin) {
                    result.ignored += 1
                    continue
                }
                if change.seq <= mine.seq(origin: change.origin, scope: change.scope) {
                    result.duplicates += 1
                    continue
                }
                guard let row = originRow[change.origin], let account = originAccount[change.origin] else {
                    throw ReaderSyncError.invalidBundle("change \(result.received) names a replica that is not in the bundle's origin table")
                }
                try clock.receive(change.hlc, wallMillis: wall, maxLeadMillis: options.maxClockLeadMillis)
                guard try policy.screen(change, account, ApplyContext(db: db)) else {
                    result.refused.append(change)
                    continue
                }
                let entryAccount = change.scope == .private ? account : nil
                try insert.execute(arguments: [
                    row, Int64(bitPattern: change.seq), Int64(bitPattern: change.hlc.rawValue),
                    Int(change.entity.rawValue), entryAccount, change.key, change.field,
                    change.value.typeTag, change.value.databaseValue,
                ])
                if db.changesCount > 0 {
                    result.applied += 1
                    event.record(change)
                    touched.insert(MergeTarget(entity: change.entity, key: change.key, account: entryAccount))
                    if touched.count >= batch {
                        for target in touched { try materialize(db, target) }
                        touched.removeAll(keepingCapacity: true)
                    }
                } else {
                    result.duplicates += 1
                }
            }
            for range in header.ranges {
                guard let row = originRow[range.origin] else { continue }
                try db.execute(sql: """
                    INSERT INTO knowledge (origin_id, scope, seq) VALUES (?, ?, ?)
                    ON CONFLICT (origin_id, scope) DO UPDATE SET seq = MAX(seq, excluded.seq)
                    """, arguments: [row, Int(range.scope.rawValue), Int64(bitPattern: range.to)])
            }
            for target in touched { try materialize(db, target) }
            try db.execute(sql: "UPDATE replica SET clock = ?", arguments: [Int64(bitPattern: clock.latest.rawValue)])
            try checkInvariants(db)
        }
        report(complete: true)
        observers.send(event)
        return result
    }

    // MARK: - Replica to replica

    /// Syncs with another replica in both directions: afterwards both hold the same changes (read state only
    /// if both belong to the same account) and, for the same account, identical dumps.
    ///
    /// - Parameter progress: told of each direction's export and apply, with ``OperationProgress/direction`` set.
    public func sync(with peer: Replica, progress: ProgressHandler? = nil) throws -> SyncReport {
        let sent = try Self.transfer(from: self, to: peer, progress: Self.directed(progress, .sending))
        let received = try Self.transfer(from: peer, to: self, progress: Self.directed(progress, .receiving))
        return SyncReport(sent: sent, received: received)
    }

    /// `progress` with every value's direction set.
    private static func directed(_ progress: ProgressHandler?, _ direction: OperationProgress.Direction) -> ProgressHandler? {
        guard let progress else { return nil }
        return { step in
            var step = step
            step.direction = direction
            progress(step)
        }
    }

    private static func transfer(from source: Replica, to target: Replica,
                                 progress: ProgressHandler?) throws -> SyncReport.Direction {
        let theirs = try target.knowledge()
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("readersync-\(UUID().uuidString).bundle")
        defer { try? FileManager.default.removeItem(at: url) }
        let export = try source.exportBundle(to: url, for: theirs, account: target.account, progress: progress)
        let applied = try target.applyBundle(at: url, progress: progress)
        return SyncReport.Direction(changes: Int(export.header.changeCount), bytes: export.bytes,
                                    applied: applied.applied, duplicates: applied.duplicates)
    }
}

/// What a two-way sync moved.
public struct SyncReport: Sendable, Equatable {
    /// One direction of a sync.
    public struct Direction: Sendable, Equatable {
        /// Changes sent.
        public var changes: Int
        /// Bundle bytes sent.
        public var bytes: Int
        /// Changes the receiver merged as new.
        public var applied: Int
        /// Changes the receiver already held.
        public var duplicates: Int

        /// Creates a direction summary.
        public init(changes: Int, bytes: Int, applied: Int, duplicates: Int) {
            self.changes = changes
            self.bytes = bytes
            self.applied = applied
            self.duplicates = duplicates
        }
    }
    /// From this replica to the peer.
    public var sent: Direction
    /// From the peer to this replica.
    public var received: Direction

    /// Creates a report.
    public init(sent: Direction, received: Direction) {
        self.sent = sent
        self.received = received
    }
}
