public import Foundation
import GRDB
import Synchronization

extension Replica {
    /// The feed for `query` now, and again after every commit that changes it: local mutations, merged bundles,
    /// bodies evicted or put back — and commits by **other processes** on the same file (an app's widget or share
    /// extension), noticed through SQLite's `data_version` every `pollInterval` seconds.
    ///
    /// Values are compared before they are sent, so an unrelated commit sends nothing; a burst of commits the
    /// consumer has not caught up with is coalesced into its latest value, which is never missed. Cancelling the
    /// consuming task (or dropping the sequence) stops the observation.
    public func observeFeed(_ query: FeedQuery = FeedQuery(), pollInterval: TimeInterval = 0.5) -> AsyncThrowingStream<[FeedItem], any Error> {
        observe(pollInterval: pollInterval) { replica, db in try replica.feed(db, query) }
    }

    /// One article with its read state, body state and comment thread, now and after every commit that changes
    /// it (see ``observeFeed(_:pollInterval:)``). Fails with ``ReaderSyncError/notFound(_:)`` if the article is not
    /// held.
    public func observeArticle(_ id: String, pollInterval: TimeInterval = 0.5) -> AsyncThrowingStream<ArticleDetail, any Error> {
        observe(pollInterval: pollInterval) { replica, db in try replica.article(db, id) }
    }

    /// The replica's status (counts, clock, change-log size), now and after every commit that changes it.
    public func observeStatus(pollInterval: TimeInterval = 0.5) -> AsyncThrowingStream<ReplicaStatus, any Error> {
        observe(pollInterval: pollInterval) { replica, _ in try replica.status() }
    }

    /// Sends `fetch`'s value now and after every commit (this process: GRDB's transaction observer; other
    /// processes: `PRAGMA data_version` on a connection of its own), when it differs from the last one sent.
    /// Every refresh runs on one serial queue and reads the latest committed state, so values never go back.
    func observe<Value: Equatable & Sendable>(pollInterval: TimeInterval,
                                             _ fetch: @escaping @Sendable (Replica, Database) throws -> Value)
        -> AsyncThrowingStream<Value, any Error> {
        let (stream, continuation) = AsyncThrowingStream<Value, any Error>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let queue = DispatchQueue(label: "ReaderSync.observation")
        let last = Mutex<Value?>(nil)
        let replica = self
        let refresh: @Sendable () -> Void = {
            queue.async {
                do {
                    let value = try Self.guarded("observe replica") { try replica.writer.read { db in try fetch(replica, db) } }
                    let changed = last.withLock { held -> Bool in
                        if held == value { return false }
                        held = value
                        return true
                    }
                    if changed { continuation.yield(value) }
                } catch {
                    continuation.finish(throwing: error)
                }
            }
        }
        // This process: every commit on the replica's writer.
        let observation = DatabaseRegionObservation(tracking: .fullDatabase)
        let cancellable = observation.start(in: writer, onError: { continuation.finish(throwing: $0) }, onChange: { _ in refresh() })
        // Other processes: a commit by any other connection changes `data_version` on this one.
        let poller: Task<Void, Never>? = if let path, pollInterval > 0 {
            Task.detached { [busyTimeout = options.busyTimeout] in
                var config = Configuration()
                config.readonly = true
                config.busyMode = .timeout(busyTimeout)
                guard let connection = try? DatabaseQueue(path: path, configuration: config) else { return }
                var seen = try? await connection.read { db in try Int.fetchOne(db, sql: "PRAGMA data_version") }
                while !Task.isCancelled {
                    try? await Task.sleep(nanoseconds: UInt64(pollInterval * 1_000_000_000))
                    let version = try? await connection.read { db in try Int.fetchOne(db, sql: "PRAGMA data_version") }
                    if version != seen {
                        seen = version
                        refresh()
                    }
                }
            }
        } else {
            nil
        }
        continuation.onTermination = { _ in
            cancellable.cancel()
            poller?.cancel()
        }
        refresh()
        return stream
    }
}
