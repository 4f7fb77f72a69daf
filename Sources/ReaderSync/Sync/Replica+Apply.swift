public import Foundation
import GRDB

extension Replica {
    // MARK: - Apply

    /// Merges a bundle file into this replica: whole or not at all.
    ///
    /// Changes already held are skipped, so applying a bundle twice, or one that overlaps what is held, is safe.
    /// - Throws: ``ReaderSyncError/invalidBundle(_:)`` (malformed, corrupt,
    ///   another account's read state), ``ReaderSyncError/invalidValue(_:)`` (a value outside its field's rule),
    ///   ``ReaderSyncError/missingChanges(_:)`` (a gap),
    ///   ``ReaderSyncError/clockSkew(_:)``. Nothing changes then.
    /// - Parameter url: the bundle file.
    /// - Parameter progress: called every 1000 changes read from the bundle and once at the end (phase
    ///   `.applying`, with the bundle's change count as `total` and its size as `totalBytes`).
    @discardableResult
    public func applyBundle(at url: URL, progress: ProgressHandler? = nil) throws -> BundleApplyResult {
        let reader = try Self.guarded("read bundle") { try BundleReader(url: url) }
        return try apply(reader, policy: defaultPolicy, progress: progress)
    }

    /// Merges an in-memory bundle. See `applyBundle(at:)`.
    @discardableResult
    public func applyBundle(data: Data) throws -> BundleApplyResult {
        let reader = try Self.guarded("read bundle") { try BundleReader(data: data) }
        return try apply(reader, policy: defaultPolicy)
    }

    /// Reads a bundle file's header without applying it (checksum verified).
    public static func inspectBundle(at url: URL) throws -> BundleHeader {
        try guarded("read bundle") { try BundleReader(url: url).header }
    }

    /// Reads an in-memory bundle's header without applying it (checksums verified).
    public static func inspectBundle(data: Data) throws -> BundleHeader {
        try guarded("read bundle") { try BundleReader(data: data).header }
    }

    /// Runs `body` with a read context over this replica's current state (a server explaining refusals).
    package func withApplyContext<T>(_ body: (ApplyContext) throws -> T) throws -> T {
        try read("read state") { db in try body(ApplyContext(db: db)) }
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

    var defaultPolicy: ApplyPolicy {
        ApplyPolicy(privateAccount: role == .server ? nil : account)
    }

    /// The bundle shows this replica's own history was forked: it must continue under a new identity first.
    private struct Forked: Error { var reason: String }

    /// Applies `reader` whole or not at all; when the bundle shows this replica was restored from a backup or
    /// copied, continues under a new identity first (its own transaction) and then applies what it can.
    func apply(_ reader: BundleReader, policy: ApplyPolicy, progress: ProgressHandler? = nil) throws -> BundleApplyResult {
        do {
            return try applyOnce(reader, policy: policy, progress: progress)
        } catch let forked as Forked {
            let change = try rotateIdentity(reason: forked.reason)
            do {
                return try applyOnce(reader, policy: policy, progress: progress)
            } catch let error as ReaderSyncError {
                if case .missingChanges(let message) = error {
                    throw ReaderSyncError.missingChanges(
                        "\(forked.reason); it now continues as replica \(change.current), and needs the changes of its old identity again: \(message)")
                }
                throw error
            }
        }
    }

    private func applyOnce(_ reader: BundleReader, policy: ApplyPolicy, progress: ProgressHandler?) throws -> BundleApplyResult {
        var result = BundleApplyResult()
        var event = ReplicaEvent(changes: [], origin: .merged)
        let header = reader.header
        let total = Int(clamping: header.changeCount)
        func report(complete: Bool) {
            progress?(OperationProgress(phase: .applying, completed: result.received, total: total,
                                        totalBytes: Int64(reader.totalBytes), isComplete: complete))
        }
        try write("apply bundle") { db in
            guard Int(header.schemaVersion) <= StoreSchema.currentVersion else {
                throw ReaderSyncError.invalidBundle(
                    "bundle was written with store schema v\(header.schemaVersion); this build knows up to v\(StoreSchema.currentVersion); upgrade ReaderSync")
            }
            let tx = StoreTransaction(db)
            let me = try tx.replicaRow()
            noteIdentity(me.origin.replica)
            let sender = "the bundle's sender (replica \(header.source), account \(Keys.printable(header.account)))"

            // This replica's own origin: nobody may hold more of it, or another history of it.
            var claims: [IdentityClaim] = []
            for range in header.ranges where range.origin == me.origin.replica && range.account.utf8.elementsEqual(me.origin.account.utf8) {
                claims.append(IdentityClaim(seq: range.to, incarnation: range.toIncarnation))
            }
            for ack in header.acknowledgements where ack.origin == me.origin.replica && ack.account.utf8.elementsEqual(me.origin.account.utf8) {
                claims.append(IdentityClaim(seq: ack.seq, incarnation: ack.incarnation))
            }
            if let reason = try forkReason(tx, claims: claims, peer: sender) { throw Forked(reason: reason) }
            // A peer that acknowledges this replica's changes holds them: bodies written here may now be evicted.
            if let acknowledged = claims.map(\.seq).max() { try BodyStore.noteAcknowledged(db, seq: acknowledged) }

            // Origins: accepted by the policy, with valid account names.
            var origins = [OriginRef?](repeating: nil, count: header.origins.count)
            for (i, info) in header.origins.enumerated() {
                guard Account.isValid(info.account) else {
                    throw ReaderSyncError.invalidBundle(
                        "bundle names replica \(info.id) with account '\(Keys.printable(info.account))', which is not an account name")
                }
                guard policy.acceptOrigin(info.id, info.account) else { continue }
                origins[i] = try tx.origin(info.id, account: info.account, create: true)
            }
            // Ranges: no other account's read state, no gap, no second history of an origin.
            struct HeldKey: Hashable { var origin: Int64; var scope: ChangeScope }
            var held: [HeldKey: UInt64] = [:]
            var accepted: [(origin: OriginRef, range: KnowledgeRange)] = []
            for range in header.ranges {
                guard let origin = try tx.origin(range.origin, account: range.account, create: false),
                      origins.contains(where: { $0 === origin }) else { continue }
                let name = "replica \(range.origin) (account \(Keys.printable(range.account)))"
                if range.scope == .private, let allowed = policy.privateAccount, !range.account.utf8.elementsEqual(allowed.utf8) {
                    throw ReaderSyncError.invalidBundle(
                        "bundle carries read state of account '\(Keys.printable(range.account))' (replica \(range.origin)); this replica belongs to '\(allowed)'")
                }
                let mine = try tx.knowledge(originRow: origin.row, scope: range.scope)
                if range.from > mine.seq {
                    throw ReaderSyncError.missingChanges(
                        "bundle starts after changes this replica lacks: \(name) (\(range.scope)) changes \(mine.seq + 1)...\(range.from); sync with a replica that holds them first")
                }
                if range.to == mine.seq, mine.seq > 0, range.toIncarnation != 0, mine.incarnation != 0,
                   range.toIncarnation != mine.incarnation {
                    throw ReaderSyncError.invalidBundle(
                        "\(name) has two different histories: this replica and the bundle hold different changes up to \(range.to); one copy of that replica was restored from a backup or copied — sync with it first so it takes a new identity")
                }
                held[HeldKey(origin: origin.row, scope: range.scope)] = mine.seq
                accepted.append((origin, range))
            }

            var clock = HybridLogicalClock(latest: me.clock)
            let wall = options.wallClock.nowMillis()
            var latestSeen: UInt64 = 0
            let merger = Merger(tx)
            while let block = try reader.nextBlock() {
                try Cancellation.check()  // cancelled: the transaction rolls back whole
                var incoming: [IncomingChange] = []
                incoming.reserveCapacity(block.count)
                for i in 0..<block.count {
                    result.received += 1
                    if result.received % 1000 == 0 {
                        report(complete: false)
                        try Cancellation.check()  // cancelled: the transaction rolls back whole
                    }
                    let number = block.firstNumber + UInt64(i)
                    guard let origin = origins[Int(block.origin[i])] else {
                        result.ignored += 1
                        continue
                    }
                    let entity = block.entity[i]
                    let seq = block.seq[i]
                    if seq <= held[HeldKey(origin: origin.row, scope: entity.scope)] ?? 0 {
                        result.duplicates += 1
                        continue
                    }
                    let hlc = block.hlc[i]
                    let key = reader.keys[block.key[i]]
                    let field = block.field[i]
                    let value = block.value[i]
                    // Built only for a message: formatting it for every change cost a tenth of the apply (perf).
                    func what() -> String {
                        "change \(number) (\(entity) '\(Keys.printable(key, limit: 60))' \(field.name), replica \(origin.replica) #\(seq))"
                    }
                    if let problem = HybridLogicalClock.problem(with: HLCTimestamp(rawValue: hlc), wallMillis: wall, bounds: options.clockBounds) {
                        throw clockError(problem, what: what(), origin: origin, header: header, wall: wall)
                    }
                    let parsed: ChangeRules.Parsed
                    do {
                        parsed = try ChangeRules.check(entity: entity, field: field, key: key, value: value)
                    } catch let problem as ValueProblem {
                        throw ReaderSyncError.invalidValue("\(what()): \(problem.message)")
                    }
                    if let screen = policy.screen {
                        let change = Change(origin: origin.replica, account: origin.account, seq: seq,
                                            hlc: HLCTimestamp(rawValue: hlc), entity: entity, key: key, field: field.name, value: value)
                        guard try screen(change, ApplyContext(db: db)) else {
                            result.refused.append(change)
                            continue
                        }
                    }
                    latestSeen = max(latestSeen, hlc)
                    event.record(entity: entity, key: key)
                    incoming.append(IncomingChange(origin: origin, seq: seq, hlc: hlc, entity: entity, field: field,
                                                   keyID: block.key[i], value: value, parsed: parsed))
                }
                _ = try merger.merge(incoming, keys: reader.keys)
                result.applied += incoming.count
            }
            for (origin, range) in accepted {
                try tx.raiseKnowledge(originRow: origin.row, scope: range.scope, to: range.to, incarnation: range.toIncarnation)
            }
            if latestSeen > 0 { clock.follow(HLCTimestamp(rawValue: latestSeen), wallMillis: wall, bounds: options.clockBounds) }
            try tx.setClock(clock.latest)
            try checkInvariants(db)
        }
        report(complete: true)
        observers.send(event)
        return result
    }

    /// The error for a change stamped outside the clock bounds, saying whose clock is off and by how much.
    private func clockError(_ problem: (tooEarly: Bool, leadMillis: Int64), what: String, origin: OriginRef,
                            header: BundleHeader, wall: Int64) -> ReaderSyncError {
        if problem.tooEarly {
            return .clockSkew("\(what) is stamped before \(ISO8601.string(fromMillis: options.clockBounds.floorMillis)): the clock of replica \(origin.replica) (account \(Keys.printable(origin.account))) was wrong when it made the change; it cannot be merged")
        }
        let lead = describeDuration(millis: problem.leadMillis)
        var diagnosis = "the clock of replica \(origin.replica) (account \(Keys.printable(origin.account))) was ahead when it made the change"
        if let written = header.writtenAtMillis {
            let senderLead = written - wall
            if senderLead > options.clockBounds.maxLeadMillis {
                diagnosis = "the sender's clock reads \(describeDuration(millis: senderLead)) ahead of this device's now: if the sender is right, this device's clock is \(describeDuration(millis: senderLead)) behind — fix whichever is wrong"
            } else if -senderLead > options.clockBounds.maxLeadMillis {
                diagnosis = "the sender's clock reads \(describeDuration(millis: -senderLead)) behind this device's, and the change is further ahead still: the clock of replica \(origin.replica) was wrong when it made it"
            }
        }
        return .clockSkew("\(what) is stamped \(lead) ahead of this device's clock (\(ISO8601.string(fromMillis: wall)); the limit is \(describeDuration(millis: options.clockBounds.maxFutureMillis))): \(diagnosis); nothing was applied")
    }

    // MARK: - Replica to replica

    /// Syncs with another replica in both directions: afterwards both hold the same changes (read state only
    /// if both belong to the same account) and, for the same account, identical dumps. No file is written: the
    /// bundles go from one to the other through memory (or an unnamed temporary file when large).
    ///
    /// - Parameter peer: the other replica, opened in this process (another file, or in memory).
    /// - Parameter progress: told of each direction's export and apply, with ``OperationProgress/direction`` set.
    public func sync(with peer: Replica, progress: ProgressHandler? = nil) throws -> SyncReport {
        var changes: [IdentityChange] = []
        if let change = try checkIdentity(against: try peer.knowledge(), peer: peer.path ?? "the peer replica") { changes.append(change) }
        if let change = try peer.checkIdentity(against: try knowledge(), peer: path ?? "the peer replica") { changes.append(change) }
        let sent = try Self.transfer(from: self, to: peer, progress: Self.directed(progress, .sending))
        let received = try Self.transfer(from: peer, to: self, progress: Self.directed(progress, .receiving))
        var report = SyncReport(sent: sent, received: received, identityChanges: changes)
        // Bodies either side evicted (or received by reference) and the other holds come back: not changes.
        // A replica under a budget takes back only bodies it never had (received by reference), not the ones its
        // budget evicted.
        if !peer.isReadOnly {
            report.bodiesSent = try peer.fillBodies(from: self, includeEvicted: try peer.storageBudget() == nil).filled
        }
        report.bodiesReceived = try fillBodies(from: peer, includeEvicted: try storageBudget() == nil).filled
        report.eviction = try enforceStorageBudget()
        if !peer.isReadOnly { report.peerEviction = try peer.enforceStorageBudget() }
        return report
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
        let (reader, export) = try source.exportReader(for: theirs, receiver: ExportReceiver(account: target.account,
                                                                                             replica: target.replicaID),
                                                       progress: progress)
        let applied = try target.apply(reader, policy: target.defaultPolicy, progress: progress)
        return SyncReport.Direction(changes: Int(export.header.changeCount), bytes: export.bytes,
                                    applied: applied.applied, duplicates: applied.duplicates)
    }
}

extension ReplicaEvent {
    init(changes: [Change], origin: Origin) {
        self.origin = origin
        articleIDs = []
        commentIDs = []
        readStateArticleIDs = []
        for change in changes { record(entity: change.entity, key: change.key) }
    }

    mutating func record(entity: EntityKind, key: String) {
        if isTruncated { return }
        if articleIDs.count + commentIDs.count + readStateArticleIDs.count >= Self.maxListedIDs {
            isTruncated = true
            return
        }
        switch entity {
        case .article: articleIDs.insert(key)
        case .comment: commentIDs.insert(key)
        case .readState: readStateArticleIDs.insert(key)
        }
    }
}
