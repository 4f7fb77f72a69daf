import Foundation
import Testing
@testable import ReaderSync

/// Reads values from a live query until one satisfies `done`, failing (not hanging) after a bound.
func awaitValue<Value: Sendable>(_ stream: AsyncThrowingStream<Value, any Error>, seconds: Double = 20,
                                 count: inout Int, until done: @escaping @Sendable (Value) -> Bool) async throws -> Value {
    let result = try await withThrowingTaskGroup(of: (Value?, Int).self) { group in
        group.addTask {
            var seen = 0
            for try await value in stream {
                seen += 1
                if done(value) { return (value, seen) }
            }
            return (nil, seen)
        }
        group.addTask {
            try await Task.sleep(nanoseconds: UInt64(seconds * 1_000_000_000))   // a bound, not synchronization
            return (nil, -1)
        }
        let first = try await group.next() ?? (nil, -1)
        group.cancelAll()
        return first
    }
    guard let value = result.0 else { throw ReaderSyncError.transport("the live query did not reach the expected value") }
    count += result.1
    return value
}

@Suite("Live queries")
struct ObservationTests {
    @Test("the feed emits after local mutations and merged bundles")
    func feedFollowsChanges() async throws {
        let source = try Replica.inMemory(account: "alice")
        try await source.upsertArticles(try fixtureArticles())
        let device = try Replica.inMemory(account: "alice")
        let feed = device.observeFeed()
        var seen = 0
        _ = try await awaitValue(feed, count: &seen) { $0.isEmpty }
        try sync(source, device)
        _ = try await awaitValue(feed, count: &seen) { $0.count == 4 }
        try await device.markRead(mainArticle)
        let read = try await awaitValue(feed, count: &seen) { items in items.contains { $0.article.id == mainArticle && $0.readState.isRead } }
        #expect(read.count == 4)
        try await source.save(stocksArticle)
        try sync(source, device)
        _ = try await awaitValue(feed, count: &seen) { items in items.contains { $0.article.id == stocksArticle && $0.readState.isSaved } }
    }

    @Test("one article's thread emits when a comment arrives; a burst is coalesced and its last state is never missed")
    func articleCoalescesBursts() async throws {
        let device = try Replica.inMemory(account: "alice")
        try await device.upsertArticles(try fixtureArticles())
        let article = device.observeArticle(mainArticle)
        var seen = 0
        _ = try await awaitValue(article, count: &seen) { $0.comments.isEmpty }
        seen = 0
        // 50 commits while nobody reads the stream: the buffer keeps only the newest value.
        for i in 1...50 { try await device.setProgress(mainArticle, Double(i) / 50) }
        _ = try await device.addComment(to: mainArticle, body: "last")
        let last = try await awaitValue(article, count: &seen) { $0.comments.count == 1 && $0.readState.progress == 1 }
        #expect(last.comments.first?.comment.body == "last")
        #expect(seen < 51, "51 commits were not coalesced: \(seen) values")
    }

    @Test("an unrelated commit sends nothing; a missing article fails the query")
    func dedupeAndErrors() async throws {
        let device = try Replica.inMemory(account: "alice")
        try await device.upsertArticles(try fixtureArticles())
        let feed = device.observeFeed(FeedQuery(savedOnly: true))
        var seen = 0
        _ = try await awaitValue(feed, count: &seen) { $0.isEmpty }
        try await device.markRead(mainArticle)            // not in the saved feed: no new value
        try await device.save(stocksArticle)
        let saved = try await awaitValue(feed, count: &seen) { !$0.isEmpty }
        #expect(saved.map(\.article.id) == [stocksArticle])
        #expect(seen == 2, "the unrelated commit sent a value")
        await #expect(throws: ReaderSyncError.self) {
            for try await _ in device.observeArticle("no-such-article") {}
        }
    }
}

@Suite("App-shaped values")
struct AppValueTests {
    @Test("openOrCreate creates once, then opens; another account's file is refused")
    func openOrCreate() throws {
        let dir = TempDir()
        let url = dir.url.appendingPathComponent("app.db")
        let first = try Replica.openOrCreate(at: url, account: "alice")
        try first.upsertArticles([sampleArticle("a")])
        let again = try Replica.openOrCreate(at: url, account: "alice")
        #expect(again.replicaID == first.replicaID)
        #expect(try again.feed().map(\.id) == ["a"])
        #expect(throws: ReaderSyncError.self) { try Replica.openOrCreate(at: url, account: "bob") }
    }
}
