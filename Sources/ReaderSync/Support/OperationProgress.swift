/// How far a long operation has got: an article import, a bundle export or apply, a replica-to-replica sync.
///
/// Operations that take a progress handler call it every few thousand items and once more at the end (with
/// ``isComplete`` set), on the thread doing the work; a handler should return quickly (print, or hand the value
/// to the main actor). Counts restart in each ``phase``.
public struct OperationProgress: Sendable, Equatable {
    /// What is being done.
    public enum Phase: String, Sendable, Equatable {
        /// Reading articles from an import file and recording them.
        case importing
        /// Selecting changes and writing them into a bundle.
        case exporting
        /// Merging the changes of a bundle.
        case applying
    }

    /// For a replica-to-replica sync: which way the changes move.
    public enum Direction: String, Sendable, Equatable {
        /// From this replica to the peer.
        case sending
        /// From the peer to this replica.
        case receiving
    }

    /// What is being done.
    public var phase: Phase
    /// Which way, in a replica-to-replica sync; nil otherwise.
    public var direction: Direction?
    /// Items done so far in this phase: articles (importing) or changes (exporting, applying).
    public var completed: Int
    /// Items the phase will handle, when known beforehand (a bundle's change count).
    public var total: Int?
    /// Bytes read (importing) or written (exporting) so far; for applying, the bundle's size once known.
    public var bytes: Int64
    /// Bytes the phase will handle, when known beforehand (an import file's size).
    public var totalBytes: Int64?
    /// Whether the phase is done.
    public var isComplete: Bool

    /// Creates a progress value.
    public init(phase: Phase, direction: Direction? = nil, completed: Int, total: Int? = nil, bytes: Int64 = 0,
                totalBytes: Int64? = nil, isComplete: Bool = false) {
        self.phase = phase
        self.direction = direction
        self.completed = completed
        self.total = total
        self.bytes = bytes
        self.totalBytes = totalBytes
        self.isComplete = isComplete
    }
}

/// Receives ``OperationProgress`` values from a long operation.
public typealias ProgressHandler = @Sendable (OperationProgress) -> Void
