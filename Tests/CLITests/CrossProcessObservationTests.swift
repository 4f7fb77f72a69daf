import Foundation
import ReaderSync
import Testing

/// An app and its widget (or share extension) open one replica file: a commit by one process reaches the other's
/// live queries.
@Suite("Live queries across processes")
struct CrossProcessObservationTests {
    @Test("a change committed by another process (the readersync binary) reaches this process's live feed")
    func otherProcessCommits() async throws {
        let box = try Sandbox()
        let path = box.path("shared.db")
        let replica = try Replica.create(at: path, account: "alice")
        try await replica.upsertArticles(try ArticleImport.parse(contentsOf: CLIPaths.fixture))
        let main = "ap-putin-trump-call-iran-ukraine"
        let feed = replica.observeFeed(pollInterval: 0.05)

        let initial = try await Self.value(of: feed) { $0.count == 4 }
        #expect(initial?.contains { $0.readState.isRead } == false)
        // The other process marks the article read.
        let result = try box.run("read", "--db", path, main)
        #expect(result.status == 0, "\(result)")
        let sawRead = try await Self.value(of: feed) { items in
            items.contains { $0.article.id == main && $0.readState.isRead }
        } != nil
        #expect(sawRead, "the other process's commit never reached the live query")
    }

    /// The first value of `stream` that satisfies `done`, or nil after a bound (a bound, not synchronization).
    static func value<Value: Sendable>(of stream: AsyncThrowingStream<Value, any Error>,
                                       until done: @escaping @Sendable (Value) -> Bool) async throws -> Value? {
        try await withThrowingTaskGroup(of: Value?.self) { group in
            group.addTask {
                for try await value in stream where done(value) { return value }
                return nil
            }
            group.addTask {
                try await Task.sleep(nanoseconds: 30_000_000_000)
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }
}
