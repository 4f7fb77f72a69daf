import Foundation
import Synchronization
import Testing
@testable import ReaderSync

/// A clock that moves only when the test says so: sleepers wake when `advance` passes their deadline.
final class ManualClock: Clock, Sendable {
    struct Instant: InstantProtocol {
        var offset: Duration
        func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        func duration(to other: Instant) -> Duration { other.offset - offset }
        static func < (a: Instant, b: Instant) -> Bool { a.offset < b.offset }
    }
    private struct State {
        var now = Instant(offset: .zero)
        var sleepers: [UUID: (deadline: Instant, continuation: CheckedContinuation<Void, Never>)] = [:]
    }
    private let state = Mutex(State())
    var now: Instant { state.withLock { $0.now } }
    var minimumResolution: Duration { .zero }

    func sleep(until deadline: Instant, tolerance: Duration?) async throws {
        let id = UUID()
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { s -> Bool in
                    if deadline <= s.now || Task.isCancelled { return true }
                    s.sleepers[id] = (deadline, continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.sleepers.removeValue(forKey: id) }?.continuation.resume()
        }
        try Task.checkCancellation()
    }

    /// Moves time to `offset` (never back) and wakes every sleeper due by then.
    func advance(to offset: Duration) {
        let due = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.now = Instant(offset: max(offset, s.now.offset))
            let ready = s.sleepers.filter { $0.value.deadline <= s.now }
            for id in ready.keys { s.sleepers[id] = nil }
            return ready.map(\.value.continuation)
        }
        for continuation in due { continuation.resume() }
    }
}

/// Records the (clock) time of every sync attempt and fails them while told to.
final class FakeSync: Sendable {
    private let state = Mutex((times: [Duration](), failing: true, error: ReaderSyncError.transport("server unreachable")))
    let clock: ManualClock
    init(clock: ManualClock, failing: Bool, error: ReaderSyncError = .transport("server unreachable")) {
        self.clock = clock
        state.withLock { $0.failing = failing; $0.error = error }
    }
    var times: [Duration] { state.withLock { $0.times } }
    func setFailing(_ failing: Bool) { state.withLock { $0.failing = failing } }
    func run() throws {
        let (failing, error) = state.withLock { s -> (Bool, ReaderSyncError) in
            s.times.append(clock.now.offset)
            return (s.failing, s.error)
        }
        if failing { throw error }
    }
}

@Suite("Sync scheduler: debounce, timer, backoff with a bound, injected clock")
struct SchedulerTests {
    typealias Updates = AsyncStream<SyncSchedulerStatus>.AsyncIterator

    /// The next status the scheduler publishes while waiting for its next attempt.
    func nextWait(_ updates: inout Updates) async throws -> SyncSchedulerStatus {
        while let status = await updates.next() {
            if status.state != .syncing, status.nextAttemptAt != nil { return status }
        }
        throw ReaderSyncError.transport("the status stream ended")
    }

    @Test("a server that is down gets a bounded number of retries, then one attempt per interval, never a loop")
    func backoffIsBounded() async throws {
        let clock = ManualClock()
        let fake = FakeSync(clock: clock, failing: true)
        let policy = SyncPolicy(debounce: .seconds(1), interval: .seconds(600), initialBackoff: .seconds(10),
                                maxBackoff: .seconds(40), maxRetries: 3, jitter: 0)
        let scheduler = SyncScheduler(policy: policy, clock: clock, random: { 0 }) { try fake.run() }
        var updates = await scheduler.statusUpdates().makeAsyncIterator()
        await scheduler.start()
        var states: [SyncSchedulerStatus.State] = []
        // Drive one simulated hour, jumping to each deadline the scheduler announces; local changes keep coming.
        while true {
            let status = try await nextWait(&updates)
            states.append(status.state)
            guard let next = status.nextAttemptAt, next <= .seconds(3600) else { break }
            await scheduler.localChange()
            clock.advance(to: next)
        }
        // 0 fails; retries after 10, 20, 40 (capped) s; then paused: every 600 s after the last attempt.
        #expect(fake.times == [0, 10, 30, 70, 670, 1270, 1870, 2470, 3070].map { Duration.seconds($0) })
        #expect(states.contains(.backingOff) && states.last == .paused)
        let status = await scheduler.currentStatus
        #expect(status.consecutiveFailures == 9 && status.lastError == "server unreachable")
        await scheduler.stop()
    }

    @Test("jitter shortens each wait by up to its fraction")
    func jitter() {
        let policy = SyncPolicy(initialBackoff: .seconds(10), maxBackoff: .seconds(100), jitter: 0.5)
        #expect(policy.backoff(afterFailures: 1) == .seconds(10))
        #expect(policy.backoff(afterFailures: 3) == .seconds(40))
        #expect(policy.backoff(afterFailures: 30) == .seconds(100))
    }

    @Test("a burst of local changes makes one sync, after the debounce")
    func debounceCoalesces() async throws {
        let clock = ManualClock()
        let fake = FakeSync(clock: clock, failing: false)
        let policy = SyncPolicy(debounce: .seconds(2), interval: .seconds(900), jitter: 0)
        let scheduler = SyncScheduler(policy: policy, clock: clock) { try fake.run() }
        var updates = await scheduler.statusUpdates().makeAsyncIterator()
        await scheduler.start()
        var status = try await nextWait(&updates)            // after the first sync: the timer
        #expect(status.nextAttemptAt == .seconds(900) && status.state == .idle)
        clock.advance(to: .seconds(100))
        for _ in 0..<5 { await scheduler.localChange() }
        repeat { status = try await nextWait(&updates) } while status.nextAttemptAt != .seconds(102)
        #expect(status.pendingLocalChanges == 5)
        clock.advance(to: .seconds(102))
        status = try await nextWait(&updates)
        #expect(status.nextAttemptAt == .seconds(1002) && status.pendingLocalChanges == 0)
        #expect(fake.times == [.zero, .seconds(102)])
        #expect(status.lastSuccessAfter == .seconds(102))
        await scheduler.stop()
    }

    @Test("an error a retry cannot fix pauses at once; syncNow tries again")
    func permanentErrorPauses() async throws {
        let clock = ManualClock()
        let fake = FakeSync(clock: clock, failing: true, error: .forbidden("the token was revoked"))
        let scheduler = SyncScheduler(policy: SyncPolicy(interval: .seconds(900), jitter: 0), clock: clock) { try fake.run() }
        var updates = await scheduler.statusUpdates().makeAsyncIterator()
        await scheduler.start()
        var status = try await nextWait(&updates)
        #expect(status.state == .paused && status.nextAttemptAt == .seconds(900))
        fake.setFailing(false)
        await scheduler.syncNow()
        status = try await nextWait(&updates)
        #expect(status.state == .idle && status.lastError == nil)
        #expect(fake.times == [.zero, .zero])
        await scheduler.stop()
    }
}
