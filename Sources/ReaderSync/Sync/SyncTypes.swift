import Foundation
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

    /// The author of a comment the receiver holds (created), or nil.
    package func commentAuthor(_ commentID: String) throws -> String? {
        try String.fetchOne(db, sql: """
            SELECT ac.name FROM comment c JOIN account ac ON ac.id = c.author_id WHERE c.key = ? AND c.created_hlc IS NOT NULL
            """, arguments: [commentID])
    }

    /// Whether the receiver holds a creation of this comment.
    package func commentExists(_ commentID: String) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT 1 FROM comment WHERE key = ? AND created_hlc IS NOT NULL", arguments: [commentID]) ?? false
    }
}

/// How a receiver screens incoming changes (a server checks rights per change).
package struct ApplyPolicy: Sendable {
    /// Which account's private (read state) changes may be received; nil: any account's (a server).
    package var privateAccount: String?
    /// Called for each new change with the receiver's state: return false to refuse just that change, throw to
    /// refuse the whole bundle. Nil: every change is taken.
    package var screen: (@Sendable (Change, ApplyContext) throws -> Bool)?
    /// Called for each origin in the bundle: return false to ignore every range and change of that origin
    /// (nothing of it is applied and knowledge of it does not advance, so it can come later).
    package var acceptOrigin: @Sendable (ReplicaID, String) -> Bool

    package init(privateAccount: String?,
                 acceptOrigin: @escaping @Sendable (ReplicaID, String) -> Bool = { _, _ in true },
                 screen: (@Sendable (Change, ApplyContext) throws -> Bool)? = nil) {
        self.privateAccount = privateAccount
        self.acceptOrigin = acceptOrigin
        self.screen = screen
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
    /// Identity changes the sync caused: a replica that found it had been restored from a backup or copied
    /// continues under a new id (the old and the new id).
    public var identityChanges: [IdentityChange] = []
    /// Bodies this replica held that the peer lacked (evicted, or received by reference), put back in the peer.
    public var bodiesSent = 0
    /// Bodies the peer held that this replica lacked, put back here.
    public var bodiesReceived = 0
    /// What enforcing this replica's storage budget after the sync did.
    public var eviction: EvictionReport?
    /// What enforcing the peer's storage budget after the sync did.
    public var peerEviction: EvictionReport?

    /// Creates a report.
    public init(sent: Direction, received: Direction, identityChanges: [IdentityChange] = []) {
        self.sent = sent
        self.received = received
        self.identityChanges = identityChanges
    }
}

/// A replica found that others hold a different history of its own changes — it was restored from a backup, or
/// its file was copied — and continues under a new replica id, keeping everything both histories hold
/// (`Schemas/merge-rules.md`, "Identity").
public struct IdentityChange: Sendable, Equatable {
    /// The id it had.
    public var previous: ReplicaID
    /// The id it has now.
    public var current: ReplicaID
    /// What showed it, as one line.
    public var reason: String
}
