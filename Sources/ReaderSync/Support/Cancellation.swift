import Dispatch
import Synchronization

/// Whether the async call that runs the current synchronous work was cancelled.
///
/// The async API runs each operation's SQLite work off Swift's cooperative thread pool (see
/// ``Cancellation/offload(_:)``), where `Task.isCancelled` is always false; this flag carries the task's cancellation
/// there. Long operations call ``Cancellation/check()`` between blocks (before each transaction, between the
/// blocks of a bundle being applied or exported, between import batches): a cancelled operation throws
/// `CancellationError` from inside its transaction, which rolls back whole.
final class CancellationFlag: Sendable {
    private let cancelled = Atomic<Bool>(false)

    var isCancelled: Bool { cancelled.load(ordering: .acquiring) }

    func cancel() { cancelled.store(true, ordering: .releasing) }
}

enum Cancellation {
    /// The flag of the async call running this code, bound by ``offload(_:)``.
    @TaskLocal static var current: CancellationFlag?

    /// Throws `CancellationError` when the async call running this code (or the current task) was cancelled.
    static func check() throws {
        if let flag = current {
            if flag.isCancelled { throw CancellationError() }
        } else if Task.isCancelled {
            throw CancellationError()
        }
    }
}

extension Cancellation {
    /// Runs synchronous replica work on a dispatch queue, so that SQLite never blocks Swift's cooperative
    /// threads, and carries the calling task's cancellation to it.
    ///
    /// A cancelled call throws `CancellationError`. Work that had not started does not start; work that had
    /// started stops at its next check and rolls back its open transaction, so the replica is as before, except
    /// for transactions the operation had already committed (a server sync commits each page it applies, and
    /// continues from there next time).
    static func offload<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try Task.checkCancellation()
        let flag = CancellationFlag()
        let qos = DispatchQoS.QoSClass(Task.currentPriority)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                DispatchQueue.global(qos: qos).async {
                    continuation.resume(with: Result { try Cancellation.$current.withValue(flag) { try body() } })
                }
            }
        } onCancel: {
            flag.cancel()
        }
    }
}

extension Replica {
    /// Runs synchronous work of this replica off the cooperative pool, cancellable: see
    /// ``Cancellation/offload(_:)``.
    func offload<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await Cancellation.offload(body)
    }
}

extension DispatchQoS.QoSClass {
    /// The dispatch class matching a task priority (user-initiated work stays user-initiated).
    init(_ priority: TaskPriority) {
        switch priority {
        case .userInitiated: self = .userInitiated  // also .high
        case .utility: self = .utility  // also .low
        case .background: self = .background
        default: self = .default
        }
    }
}
