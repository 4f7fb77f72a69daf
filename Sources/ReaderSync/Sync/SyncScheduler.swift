import Foundation
import Synchronization

/// When a ``SyncScheduler`` syncs, and how it backs off.
public struct SyncPolicy: Sendable, Equatable {
    /// How long after the last local change to wait before syncing (a burst of changes makes one sync).
    public var debounce: Duration
    /// How often to sync when nothing else asks for it.
    public var interval: Duration
    /// The wait after the first failure; each further failure doubles it, up to ``maxBackoff``.
    public var initialBackoff: Duration
    /// The longest wait between retries.
    public var maxBackoff: Duration
    /// How many failed attempts in a row are retried on the backoff schedule. After that the scheduler stops
    /// retrying and tries again only at the next ``interval`` or when asked (``SyncScheduler/syncNow()``): a server
    /// that is down costs at most one attempt per interval, never a loop.
    public var maxRetries: Int
    /// Each wait is shortened by a random fraction up to this (0…1), so devices do not retry in step.
    public var jitter: Double

    /// Creates a policy; the defaults suit a phone: 2 s debounce, a sync every 15 minutes, backoff from 5 s to
    /// 10 minutes, 6 retries, 20 % jitter.
    public init(debounce: Duration = .seconds(2), interval: Duration = .seconds(900), initialBackoff: Duration = .seconds(5),
                maxBackoff: Duration = .seconds(600), maxRetries: Int = 6, jitter: Double = 0.2) {
        self.debounce = debounce
        self.interval = interval
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
        self.maxRetries = max(0, maxRetries)
        self.jitter = min(max(jitter, 0), 1)
    }

    /// The wait before retry number `failures` (1 for the first failure), before jitter.
    public func backoff(afterFailures failures: Int) -> Duration {
        guard failures > 0 else { return .zero }
        var wait = initialBackoff
        for _ in 1..<failures {
            wait = wait * 2
            if wait >= maxBackoff { return maxBackoff }
        }
        return min(wait, maxBackoff)
    }
}

/// What a ``SyncScheduler`` is doing, for an app to show.
public struct SyncSchedulerStatus: Sendable, Equatable {
    /// The scheduler's state.
    public enum State: Sendable, Equatable {
        /// Waiting for the next trigger.
        case idle
        /// A sync is running.
        case syncing
        /// The last attempt failed; the next one is on the backoff schedule.
        case backingOff
        /// Retries are used up (or the error is one a retry cannot fix); the next attempt is at the next interval
        /// or on ``SyncScheduler/syncNow()``.
        case paused
        /// Stopped.
        case stopped
    }
    /// The state.
    public var state: State = .idle
    /// Attempts made, successful or not.
    public var attempts = 0
    /// Failed attempts in a row.
    public var consecutiveFailures = 0
    /// The last error, as one line, until a sync succeeds.
    public var lastError: String?
    /// When the last successful sync ended, by the scheduler's clock (seconds since it started).
    public var lastSuccessAfter: Duration?
    /// Local changes reported since the last successful sync began.
    public var pendingLocalChanges = 0
    /// When the next attempt is due, by the scheduler's clock (time since it started); nil while syncing, or when
    /// only a trigger can start one.
    public var nextAttemptAt: Duration?
    /// While a server sync runs (a scheduler made with ``SyncScheduler/init(replica:transport:options:policy:clock:random:)``):
    /// its latest step — direction, pages, changes and bytes so far, and the pull's
    /// ``ServerSyncProgress/fractionCompleted``. Nil between syncs.
    public var progress: ServerSyncProgress?
    /// What the last successful server sync moved each way (pages, changes, bytes), for such a scheduler.
    public var lastReport: ServerSyncReport?
}

/// Syncs automatically, the way an app needs it: soon after local changes (debounced), on a timer, and on demand;
/// after a failure it retries with exponential backoff and jitter, a bounded number of times, then waits for the
/// next interval — so a server that is down never causes a retry loop. Errors a retry cannot fix
/// (``ReaderSyncError/forbidden(_:)``, ``ReaderSyncError/invalidInput(_:)``,
/// ``ReaderSyncError/incompatibleReplica(_:)``) pause it at once.
///
/// The clock is injected: `ContinuousClock` in an app, a manual clock in tests.
///
/// ```swift
/// let scheduler = SyncScheduler(clock: ContinuousClock()) { _ = try await replica.sync(using: transport) }
/// await scheduler.start()
/// // after each local mutation:
/// await scheduler.localChange()
/// ```
public actor SyncScheduler<C: Clock> where C.Duration == Duration {
    /// The policy in force.
    public let policy: SyncPolicy
    private let clock: C
    private let perform: @Sendable () async throws -> Void
    private let random: @Sendable () -> Double

    private var status = SyncSchedulerStatus()
    private var watchers: [UUID: AsyncStream<SyncSchedulerStatus>.Continuation] = [:]
    private var loop: Task<Void, Never>?
    private var started: C.Instant?
    private var lastAttemptEnd: C.Instant?
    private var lastFailureEnd: C.Instant?
    private var lastLocalChange: C.Instant?
    private var currentRetryWait: Duration = .zero
    private var demanded = false
    private var waiter: CheckedContinuation<Void, Never>?
    private var sleeper: Task<Void, Never>?

    /// Creates a scheduler that runs `sync` when due.
    /// - Parameters:
    ///   - policy: when to sync and how to back off.
    ///   - clock: the clock to wait on (`ContinuousClock` in an app, a manual clock in tests).
    ///   - sync: one sync attempt; a thrown error counts as a failure.
    ///   - random: a source of numbers in 0..<1 for jitter (inject a fixed one in tests).
    public init(policy: SyncPolicy = SyncPolicy(), clock: C, random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
                sync: @escaping @Sendable () async throws -> Void) {
        self.policy = policy
        self.clock = clock
        self.random = random
        self.perform = sync
    }

    /// Creates a scheduler that syncs `replica` with a server through `transport`, and shows each sync's
    /// progress (``SyncSchedulerStatus/progress``) and result (``SyncSchedulerStatus/lastReport``) in its status.
    public init(replica: Replica, transport: any SyncTransport, options: ServerSyncOptions = ServerSyncOptions(),
                policy: SyncPolicy = SyncPolicy(), clock: C,
                random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }) {
        let box = SchedulerReference<C>()
        self.init(policy: policy, clock: clock, random: random) {
            let report = try await replica.sync(using: transport, options: options, step: { step in
                await box.scheduler?.noteProgress(step)
            })
            await box.scheduler?.finish(report)
        }
        box.scheduler = self
    }

    /// The current status.
    public var currentStatus: SyncSchedulerStatus { status }

    /// A step of the running sync: shown before the sync goes on.
    private func noteProgress(_ step: ServerSyncProgress) {
        guard status.state == .syncing else { return }
        status.progress = step
        publish()
    }

    private func finish(_ report: ServerSyncReport) {
        status.lastReport = report
    }

    /// Every status from now on, starting with the current one.
    public func statusUpdates() -> AsyncStream<SyncSchedulerStatus> {
        let (stream, continuation) = AsyncStream<SyncSchedulerStatus>.makeStream(bufferingPolicy: .bufferingNewest(64))
        let id = UUID()
        watchers[id] = continuation
        continuation.yield(status)
        continuation.onTermination = { [weak self] _ in
            Task { await self?.unwatch(id) }
        }
        return stream
    }

    private func unwatch(_ id: UUID) { watchers[id] = nil }

    private func publish() {
        for watcher in watchers.values { watcher.yield(status) }
    }

    /// Starts scheduling: the first sync runs at once.
    public func start() {
        guard loop == nil else { return }
        started = clock.now
        demanded = true
        status.state = .idle
        loop = Task { await self.run() }
    }

    /// Stops scheduling; a sync in progress finishes.
    public func stop() {
        loop?.cancel()
        loop = nil
        status.state = .stopped
        wake()
        publish()
    }

    /// Reports a local change: a sync follows after ``SyncPolicy/debounce`` (later while backing off; not while
    /// paused — the next interval or ``syncNow()`` carries it).
    public func localChange() {
        status.pendingLocalChanges += 1
        lastLocalChange = clock.now
        publish()
        wake()
    }

    /// Syncs as soon as possible, whatever the backoff; a new series of retries starts if it fails.
    public func syncNow() {
        demanded = true
        status.consecutiveFailures = 0
        wake()
    }

    // MARK: - The loop

    /// When the next sync is due, or nil when only a trigger can start one.
    private func nextDue() -> C.Instant? {
        if demanded { return clock.now }
        guard let base = lastAttemptEnd ?? started else { return clock.now }
        let timer = base.advanced(by: policy.interval)
        switch status.state {
        case .paused:
            return timer
        case .backingOff:
            guard let failed = lastFailureEnd else { return timer }
            return min(timer, failed.advanced(by: currentRetryWait))
        default:
            if let change = lastLocalChange, status.pendingLocalChanges > 0 {
                return min(timer, change.advanced(by: policy.debounce))
            }
            return timer
        }
    }

    private func run() async {
        while !Task.isCancelled {
            if let due = nextDue(), clock.now >= due {
                await attempt()
                continue
            }
            let due = nextDue()
            if let started {
                let next = due.map { started.duration(to: $0) }
                if status.nextAttemptAt != next {
                    status.nextAttemptAt = next
                    publish()
                }
            }
            await wait(until: due)
        }
    }

    private func wait(until due: C.Instant?) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            waiter = continuation
            if let due {
                let clock = clock
                sleeper = Task {
                    try? await clock.sleep(until: due, tolerance: nil)
                    self.wake()
                }
            }
        }
    }

    private func wake() {
        sleeper?.cancel()
        sleeper = nil
        if let waiter {
            self.waiter = nil
            waiter.resume()
        }
    }

    private func attempt() async {
        demanded = false
        let changesBefore = status.pendingLocalChanges
        status.nextAttemptAt = nil
        status.state = .syncing
        status.attempts += 1
        publish()
        do {
            try await perform()
            status.progress = nil
            lastAttemptEnd = clock.now
            lastFailureEnd = nil
            status.consecutiveFailures = 0
            status.lastError = nil
            status.pendingLocalChanges = max(0, status.pendingLocalChanges - changesBefore)
            if let started { status.lastSuccessAfter = started.duration(to: clock.now) }
            status.state = .idle
        } catch {
            status.progress = nil
            lastAttemptEnd = clock.now
            lastFailureEnd = clock.now
            status.consecutiveFailures += 1
            status.lastError = (error as? ReaderSyncError)?.message ?? String(describing: error)
            if Self.isPermanent(error) || status.consecutiveFailures > policy.maxRetries {
                status.state = .paused
            } else {
                let wait = policy.backoff(afterFailures: status.consecutiveFailures)
                currentRetryWait = wait * (1 - policy.jitter * min(max(random(), 0), 1))
                status.state = .backingOff
            }
        }
        if loop == nil { status.state = .stopped }
        publish()
    }

    /// Errors that retrying cannot fix: the user or the app has to act.
    static func isPermanent(_ error: any Error) -> Bool {
        switch error as? ReaderSyncError {
        case .forbidden?, .invalidInput?, .incompatibleReplica?: return true
        case .server(let status, _)?:
            // The token, the request or the account is wrong (4xx); a timeout, a rate limit or the server
            // failing (408, 429, 5xx) may pass.
            return (400..<500).contains(status) && status != 408 && status != 429
        default: return false
        }
    }
}

/// Lets a scheduler's sync closure, made before the scheduler exists, reach it — weakly: the scheduler holds the
/// closure that holds this box.
private final class SchedulerReference<C: Clock>: Sendable where C.Duration == Duration {
    private struct Weak {
        weak var value: SyncScheduler<C>?
    }
    private let reference = Mutex(Weak())

    var scheduler: SyncScheduler<C>? {
        get { reference.withLock { $0.value } }
        set { reference.withLock { $0.value = newValue } }
    }
}
