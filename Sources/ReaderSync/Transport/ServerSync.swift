import Foundation

/// Page sizes of a sync with a server.
public struct ServerSyncOptions: Sendable, Equatable {
    /// At most this many changes per pushed bundle.
    public var pushPageChanges: Int
    /// A pushed bundle larger than this is split (halved until it fits, or holds one change).
    public var maxPushBytes: Int
    /// At most this many changes per pulled page; nil lets the server choose.
    public var pullPageChanges: Int?

    /// Creates options; the defaults suit a server with the default 32 MiB body limit.
    public init(pushPageChanges: Int = 2_000, maxPushBytes: Int = 16 << 20, pullPageChanges: Int? = nil) {
        self.pushPageChanges = max(1, pushPageChanges)
        self.maxPushBytes = max(1, maxPushBytes)
        self.pullPageChanges = pullPageChanges
    }
}

/// Where a sync with a server is: reported after every page, for long transfers.
public struct ServerSyncProgress: Sendable, Equatable {
    /// Which direction is moving.
    public enum Phase: String, Sendable, Equatable {
        /// Sending this replica's changes.
        case pushing
        /// Receiving what the server holds and this replica lacks.
        case pulling
    }
    /// The direction.
    public var phase: Phase
    /// Pages done so far in this direction.
    public var pages: Int
    /// Changes moved so far in this direction.
    public var changes: Int
    /// Bundle bytes moved so far in this direction.
    public var bytes: Int
    /// Whether this direction is done.
    public var isComplete: Bool
    /// While pulling: the changes the server still holds for this replica after the pages so far, when the
    /// server says (the reference server does); nil while pushing.
    public var remainingChanges: Int?

    /// The share of this direction done, 0…1: while pulling, changes so far against changes so far plus those
    /// remaining (when the server says how many remain); 1 once the direction is complete; otherwise nil.
    public var fractionCompleted: Double? {
        if isComplete { return 1 }
        guard let remainingChanges, changes + remainingChanges > 0 else { return nil }
        return Double(changes) / Double(changes + remainingChanges)
    }

    /// Creates a progress value.
    public init(phase: Phase, pages: Int, changes: Int, bytes: Int, isComplete: Bool, remainingChanges: Int? = nil) {
        self.phase = phase
        self.pages = pages
        self.changes = changes
        self.bytes = bytes
        self.isComplete = isComplete
        self.remainingChanges = remainingChanges
    }
}

/// What a sync with a server moved each way.
public struct ServerSyncReport: Sendable, Equatable {
    /// One direction.
    public struct Direction: Sendable, Equatable {
        /// Bundles sent or received.
        public var pages = 0
        /// Changes they carried.
        public var changes = 0
        /// Their bytes.
        public var bytes = 0
        /// Changes the receiver merged as new.
        public var applied = 0
        /// Changes the receiver already held.
        public var duplicates = 0
    }
    /// The account the server knows the token as.
    public var account: RemoteAccount
    /// From this replica to the server.
    public var pushed = Direction()
    /// From the server to this replica.
    public var pulled = Direction()
    /// Changes the server refused; this replica keeps them.
    public var refused: [RefusedChange] = []
    /// Set when the server holds a different history of this replica's own changes (the file was restored from
    /// a backup or copied): the replica continued under a new id before pushing.
    public var identityChange: IdentityChange?
    /// True when one request showed there was nothing to move (`POST /v1/sync/check`), and nothing else was asked.
    public var wasUpToDate = false
    /// What enforcing the storage budget after the sync did.
    public var eviction: EvictionReport?
}

extension Replica {
    /// Syncs with a server in both directions: pushes what the server lacks, then pulls pages of what this
    /// replica lacks, applying each page as it arrives.
    ///
    /// Each pushed bundle and each pulled page is applied atomically, so a failure part-way (a dropped
    /// connection) leaves both sides consistent, and syncing again continues from what was applied. Afterwards
    /// this replica and the server hold the same changes this account may see, as replica-to-replica sync does.
    /// Only this replica's account's own replicas' changes are pushed: the server takes other accounts'
    /// changes from their authors.
    ///
    /// - Parameters:
    ///   - transport: how to reach the server (``URLSessionTransport``).
    ///   - options: page sizes for pushes and pulls.
    ///   - progress: called after every page.
    /// - Throws: ``ReaderSyncError``: ``ReaderSyncError/transport(_:)`` for the network or the server,
    ///   ``ReaderSyncError/forbidden(_:)`` for a push the server refused for rights,
    ///   ``ReaderSyncError/invalidInput(_:)`` when the token belongs to another account.
    public func sync(using transport: any SyncTransport, options: ServerSyncOptions = ServerSyncOptions(),
                     progress: (@Sendable (ServerSyncProgress) -> Void)? = nil) async throws -> ServerSyncReport {
        let step: (@Sendable (ServerSyncProgress) async -> Void)? = if let progress { { @Sendable step in progress(step) } } else { nil }
        return try await sync(using: transport, options: options, step: step)
    }

    /// ``sync(using:options:progress:)`` with a progress handler the sync awaits after each page (the
    /// ``SyncScheduler`` records each step on its actor before the sync goes on).
    func sync(using transport: any SyncTransport, options: ServerSyncOptions,
              step progress: (@Sendable (ServerSyncProgress) async -> Void)?) async throws -> ServerSyncReport {
        // Nothing moved since the last sync? One request says so (`POST /v1/sync/check`).
        let digest = try await knowledge().digest(account: account)
        if let check = try await transport.check(digest: digest) {
            guard check.account.utf8.elementsEqual(account.utf8) else {
                throw ReaderSyncError.invalidInput(
                    "the token belongs to account '\(check.account)', but this replica belongs to '\(account)'; use a token of '\(account)'")
            }
            if check.upToDate {
                var report = ServerSyncReport(account: RemoteAccount(name: check.account, role: check.role))
                report.wasUpToDate = true
                return report
            }
        }
        let remote = try await transport.account()
        guard remote.name == account else {
            throw ReaderSyncError.invalidInput(
                "the token belongs to account '\(remote.name)', but this replica belongs to '\(account)'; use a token of '\(account)'")
        }
        var report = ServerSyncReport(account: remote)
        try await push(using: transport, options: options, report: &report, progress: progress)
        try await pull(using: transport, options: options, report: &report, progress: progress)
        report.eviction = try await enforceStorageBudget()
        return report
    }

    private func push(using transport: any SyncTransport, options: ServerSyncOptions, report: inout ServerSyncReport,
                      progress: (@Sendable (ServerSyncProgress) async -> Void)?) async throws {
        var theirs = try await transport.knowledge()
        let held = theirs
        report.identityChange = try await offload { try self.checkIdentity(against: held, peer: "the server") }
        var pageSize = options.pushPageChanges
        while true {
            try Task.checkCancellation()
            let basis = try await pushBasis(theirs)
            let (data, summary) = try await exportBundleData(for: basis, account: account, maxChanges: pageSize)
            if summary.header.ranges.isEmpty { break }
            if summary.bytes > options.maxPushBytes && summary.header.changeCount > 1 {
                pageSize = max(1, Int(summary.header.changeCount) / 2)
                continue
            }
            let answer = try await transport.push(data)
            report.pushed.pages += 1
            report.pushed.changes += Int(summary.header.changeCount)
            report.pushed.bytes += data.count
            report.pushed.applied += answer.applied
            report.pushed.duplicates += answer.duplicates
            report.refused += answer.refused
            await progress?(ServerSyncProgress(phase: .pushing, pages: report.pushed.pages, changes: report.pushed.changes,
                                         bytes: report.pushed.bytes, isComplete: summary.isComplete))
            if summary.isComplete { break }
            let taken = summary.header.ranges.allSatisfy {
                answer.knowledge.seq(origin: $0.origin, account: $0.account, scope: $0.scope) >= $0.to
            }
            guard taken else {
                throw ReaderSyncError.transport("the server did not take a pushed page; it may run another version of ReaderSync")
            }
            theirs = answer.knowledge
        }
    }

    /// The knowledge to export a push for: the server's, with every other account's replica marked as held, so
    /// that only changes the server will take (this account's own replicas') are sent.
    private func pushBasis(_ server: Knowledge) async throws -> Knowledge {
        var basis = server
        for (key, entry) in try await knowledge().entries where !key.account.utf8.elementsEqual(account.utf8) {
            basis.advance(origin: key.origin, account: key.account, scope: key.scope, to: entry.seq, incarnation: entry.incarnation)
        }
        return basis
    }

    private func pull(using transport: any SyncTransport, options: ServerSyncOptions, report: inout ServerSyncReport,
                      progress: (@Sendable (ServerSyncProgress) async -> Void)?) async throws {
        var mine = try await knowledge()
        while true {
            try Task.checkCancellation()
            let page = try await transport.pull(knowledge: mine, maxChanges: options.pullPageChanges)
            let result = try await applyBundle(data: page.bundle)
            report.pulled.pages += 1
            report.pulled.changes += result.received
            report.pulled.bytes += page.bundle.count
            report.pulled.applied += result.applied
            report.pulled.duplicates += result.duplicates
            await progress?(ServerSyncProgress(phase: .pulling, pages: report.pulled.pages, changes: report.pulled.changes,
                                         bytes: report.pulled.bytes, isComplete: page.isComplete,
                                         remainingChanges: page.isComplete ? 0 : page.remainingChanges))
            if page.isComplete { break }
            let next = try await knowledge()
            guard next != mine else {
                throw ReaderSyncError.transport("the server sent an incomplete page that brought nothing new; stopping")
            }
            mine = next
        }
    }
}
