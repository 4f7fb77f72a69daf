public import Foundation
import GRDB

/// Who will receive an export: enough to send them only what they may hold and to tell them what the sender
/// knows of their own origin.
struct ExportReceiver {
    /// The receiver's account (read state goes only to the same account); nil: no read state at all.
    var account: String?
    /// The receiver's own identity, when known: the bundle acknowledges what the sender holds of it.
    var replica: ReplicaID?
}

extension Replica {
    // MARK: - Export

    /// Writes a bundle of the changes `theirs` lacks to `url` (through a temporary file renamed over it).
    ///
    /// - Parameters:
    ///   - url: the bundle file to write.
    ///   - theirs: the receiver's knowledge; an empty ``Knowledge`` exports everything held.
    ///   - account: the receiver's account. Read state goes only to replicas of its own account: read state of
    ///     other accounts is never exported; pass nil to export no read state at all.
    ///   - receiver: the receiving replica, when known: the bundle then tells it what this replica holds of its
    ///     changes, so a receiver restored from a backup notices.
    ///   - maxChanges: at most this many changes (a page); the summary says whether more remain.
    ///   - maxBytes: stop adding changes once their values and keys add up to about this many bytes (before
    ///     compression); a page always holds at least one change.
    ///   - progress: called every 1000 changes written into the bundle and once at the end, with the file's size
    ///     (phase `.exporting`).
    public func exportBundle(to url: URL, for theirs: Knowledge, account: String?, receiver: ReplicaID? = nil,
                             maxChanges: Int? = nil, maxBytes: Int? = nil,
                             progress: ProgressHandler? = nil) throws -> BundleExportSummary {
        try checkIdentity(against: theirs, peer: "the receiver")
        let (writer, complete) = try prepareExport(for: theirs, receiver: ExportReceiver(account: account, replica: receiver),
                                                   maxChanges: maxChanges, maxBytes: maxBytes, progress: progress)
        try Cancellation.check()  // cancelled: no file is written
        let header = try Self.guarded("write bundle") { try writer.finish(to: url) }
        let bytes = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
        progress?(OperationProgress(phase: .exporting, completed: Int(header.changeCount), total: Int(header.changeCount),
                                    bytes: Int64(bytes), totalBytes: Int64(bytes), isComplete: true))
        return BundleExportSummary(header: header, bytes: bytes, isComplete: complete)
    }

    /// Builds a bundle of the changes `theirs` lacks, in memory.
    /// See `exportBundle(to:for:account:receiver:maxChanges:maxBytes:)`.
    public func exportBundleData(for theirs: Knowledge, account: String?, receiver: ReplicaID? = nil,
                                 maxChanges: Int? = nil, maxBytes: Int? = nil) throws -> (data: Data, summary: BundleExportSummary) {
        try checkIdentity(against: theirs, peer: "the receiver")
        let (writer, complete) = try prepareExport(for: theirs, receiver: ExportReceiver(account: account, replica: receiver),
                                                   maxChanges: maxChanges, maxBytes: maxBytes)
        let (header, data) = try Self.guarded("write bundle") { try writer.finishData() }
        return (data, BundleExportSummary(header: header, bytes: data.count, isComplete: complete))
    }

    /// Builds a bundle and hands back a reader over it, without writing it anywhere (replica-to-replica sync).
    func exportReader(for theirs: Knowledge, receiver: ExportReceiver,
                      progress: ProgressHandler? = nil) throws -> (BundleReader, BundleExportSummary) {
        let (writer, complete) = try prepareExport(for: theirs, receiver: receiver, maxChanges: nil, maxBytes: nil,
                                                   progress: progress)
        let reader = try Self.guarded("write bundle") { try writer.finishReader() }
        progress?(OperationProgress(phase: .exporting, completed: Int(reader.header.changeCount),
                                    total: Int(reader.header.changeCount), bytes: Int64(reader.totalBytes),
                                    totalBytes: Int64(reader.totalBytes), isComplete: true))
        return (reader, BundleExportSummary(header: reader.header, bytes: reader.totalBytes, isComplete: complete))
    }

    /// How many change-log entries an export for `theirs` (to a replica of `account`) would carry in all, over
    /// every page: one index range count per origin and scope. The reference server sends it with each pull page
    /// (less the page's changes) so that clients can show a fraction.
    package func changeCount(missingFrom theirs: Knowledge, account: String?) throws -> Int {
        try read("count missing changes") { db in
            let tx = StoreTransaction(db)
            let count = try db.cachedStatement(sql: """
                SELECT count(*) FROM change_log
                WHERE origin_id = ? AND seq > ? AND seq <= ? AND (entity = \(EntityKind.readState.rawValue)) = ?
                """)
            var total = 0
            for row in try Row.fetchAll(db, sql: "SELECT origin_id, scope, seq FROM knowledge") {
                try Cancellation.check()
                let origin = try tx.origin(row: row[0])
                guard let scope = ChangeScope(rawValue: UInt8(clamping: row[1] as Int)) else {
                    throw ReaderSyncError.storage("knowledge table is corrupt")
                }
                if scope == .private && !(account.map { $0.utf8.elementsEqual(origin.account.utf8) } ?? false) { continue }
                let mine = UInt64(bitPattern: row[2])
                let have = theirs.seq(origin: origin.replica, account: origin.account, scope: scope)
                guard mine > have else { continue }
                total += try Int.fetchOne(count, arguments: [origin.row, Int64(bitPattern: have), Int64(bitPattern: mine),
                                                             scope == .private]) ?? 0
            }
            return total
        }
    }

    func prepareExport(for theirs: Knowledge, receiver: ExportReceiver, maxChanges: Int?,
                       maxBytes: Int?, progress: ProgressHandler? = nil) throws -> (BundleWriter, Bool) {
        if let maxChanges, maxChanges < 1 {
            throw ReaderSyncError.invalidInput("a bundle page must hold at least one change, got \(maxChanges)")
        }
        if let maxBytes, maxBytes < 1 {
            throw ReaderSyncError.invalidInput("a bundle page must allow at least one byte, got \(maxBytes)")
        }
        var changeBudget = maxChanges ?? Int.max
        var byteBudget = maxBytes ?? Int.max
        var selectedAny = false
        return try read("export bundle") { db in
            let tx = StoreTransaction(db)
            let me = try tx.replicaRow()
            struct Plan {
                var scope: ChangeScope
                var from: UInt64
                var to: UInt64
                var incarnation: UInt64
            }
            // What each origin's ranges will be, origins in (replica id, account) order.
            var plans: [(origin: OriginRef, scopes: [Plan])] = []
            var byOrigin: [Int64: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT origin_id, scope, seq, incarnation FROM knowledge") {
                let origin = try tx.origin(row: row[0])
                guard let scope = ChangeScope(rawValue: UInt8(clamping: row[1] as Int)) else {
                    throw ReaderSyncError.storage("knowledge table is corrupt")
                }
                if scope == .private && !(receiver.account.map { $0.utf8.elementsEqual(origin.account.utf8) } ?? false) { continue }
                let mine = UInt64(bitPattern: row[2])
                let have = theirs.seq(origin: origin.replica, account: origin.account, scope: scope)
                guard mine > have else { continue }
                let incarnation = origin === me.origin ? try tx.ownIncarnation(at: mine) : UInt64(bitPattern: row[3])
                let plan = Plan(scope: scope, from: have, to: mine, incarnation: incarnation)
                if let i = byOrigin[origin.row] { plans[i].scopes.append(plan) } else {
                    byOrigin[origin.row] = plans.count
                    plans.append((origin, [plan]))
                }
            }
            plans.sort { a, b in
                a.origin.replica != b.origin.replica ? a.origin.replica < b.origin.replica
                    : a.origin.account.utf8.lexicographicallyPrecedes(b.origin.account.utf8)
            }

            // Select the changes, origin by origin in sequence order, so a page can end the ranges early.
            var complete = true
            var selected: [(origin: OriginRef, ranges: [Plan], changes: [Change])] = []
            var scanned = 0
            let scan = try db.cachedStatement(sql: """
                SELECT c.seq, c.hlc, c.entity, c.field, c.value_type, c.value,
                       CASE c.entity WHEN 2 THEN m.key ELSE a.key END AS key,
                       a.source, a.url, a.title, a.byline, a.body, a.topics, a.related, a.published_at, a.updated_at,
                       a.body_sha256
                FROM change_log c
                LEFT JOIN article a ON c.entity != 2 AND a.id = c.target
                LEFT JOIN comment m ON c.entity = 2 AND m.id = c.target
                WHERE c.origin_id = ? AND c.seq > ? AND c.seq <= ?
                ORDER BY c.seq
                """)
            for (origin, scopes) in plans {
                if changeBudget == 0 { complete = false; break }
                var ranges = scopes
                let low = scopes.map(\.from).min() ?? 0
                let high = scopes.map(\.to).max() ?? 0
                var changes: [Change] = []
                var stoppedAt: UInt64?
                let rows = try Row.fetchCursor(scan, arguments: [origin.row, Int64(bitPattern: low), Int64(bitPattern: high)])
                while let row = try rows.next() {
                    scanned += 1
                    if scanned % 4096 == 0 { try Cancellation.check() }
                    let seq = UInt64(bitPattern: row[0])
                    guard let entity = EntityKind(rawValue: UInt8(clamping: row[2] as Int)),
                          let field = FieldCode(rawValue: UInt8(clamping: row[3] as Int)) else {
                        throw ReaderSyncError.storage("change log entry \(origin.row)/\(seq) is corrupt")
                    }
                    guard let plan = ranges.first(where: { $0.scope == entity.scope }), seq > plan.from, seq <= plan.to else { continue }
                    guard let key = row[6] as String? else {
                        throw ReaderSyncError.storage("change log entry \(origin.row)/\(seq) names a missing target")
                    }
                    let type: Int = row[4]
                    let value: ChangeValue = type == StoreTransaction.valueInRow
                        ? .string(try StoreTransaction.content(row, offset: 7).encoded())
                        : try ChangeValue(typeTag: type, databaseValue: row[5])
                    var size = key.utf8.count + 32
                    if case .string(let text) = value { size += text.utf8.count }
                    if changeBudget == 0 || (selectedAny && size > byteBudget) {
                        stoppedAt = seq
                        complete = false
                        break
                    }
                    byteBudget -= min(size, byteBudget)
                    changeBudget -= 1
                    selectedAny = true
                    changes.append(Change(origin: origin.replica, account: origin.account, seq: seq,
                                          hlc: HLCTimestamp(rawValue: UInt64(bitPattern: row[1])), entity: entity,
                                          key: key, field: field.name, value: value))
                }
                if let stoppedAt {
                    // The page is full: every range of this origin ends just before the change that did not fit.
                    for i in ranges.indices where ranges[i].to >= stoppedAt {
                        ranges[i].to = stoppedAt - 1
                        ranges[i].incarnation = origin === me.origin ? try tx.ownIncarnation(at: ranges[i].to) : 0
                    }
                    ranges.removeAll { $0.to <= $0.from }
                }
                if !ranges.isEmpty { selected.append((origin, ranges, changes)) }
                if !complete { break }
            }
            var acknowledgements: [BundleAcknowledgement] = []
            if let peer = receiver.replica, let account = receiver.account,
               let origin = try tx.origin(peer, account: account, create: false) {
                for scope in ChangeScope.allCases {
                    let entry = try tx.knowledge(originRow: origin.row, scope: scope)
                    if entry.seq > 0 {
                        acknowledgements.append(BundleAcknowledgement(origin: peer, account: account, scope: scope,
                                                                      seq: entry.seq, incarnation: entry.incarnation))
                    }
                }
            }
            let writer = try BundleWriter(
                source: me.origin.replica, account: account, schemaVersion: UInt16(StoreSchema.currentVersion),
                writtenAtMillis: options.wallClock.nowMillis(),
                origins: selected.map { BundleOriginInfo(id: $0.origin.replica, account: $0.origin.account) },
                ranges: selected.flatMap { s in
                    s.ranges.map { KnowledgeRange(origin: s.origin.replica, account: s.origin.account, scope: $0.scope,
                                                  from: $0.from, to: $0.to, toIncarnation: $0.incarnation) }
                },
                acknowledgements: acknowledgements)
            let total = selected.reduce(0) { $0 + $1.2.count }
            var written = 0
            for (_, _, changes) in selected {
                for change in changes {
                    try writer.append(change)
                    written += 1
                    if written % 1000 == 0 {
                        progress?(OperationProgress(phase: .exporting, completed: written, total: total))
                        try Cancellation.check()
                    }
                }
            }
            return (writer, complete)
        }
    }
}
