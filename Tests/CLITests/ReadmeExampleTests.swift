import Foundation
import ReaderSync
import Testing

/// The README's "Embedding the library" example, verbatim but for the paths, so it keeps compiling and working.
@Suite("README example")
struct ReadmeExampleTests {
    @Test("the embedding example runs and the laptop ends with the phone's article, read state and comment")
    func embeddingExample() async throws {
        let box = try Sandbox()

        // --- README example, with paths in the sandbox ---
        let phone = try Replica.create(at: box.path("phone.db"), account: "alice")
        let laptop = try Replica.create(at: box.path("laptop.db"), account: "alice")

        let events = laptop.events()
        let refreshed = Task { () -> ReplicaEvent? in
            for await event in events { return event }
            return nil
        }

        try phone.upsertArticles([
            Article(id: "hello-offline", source: "Example Wire", title: "Hello, offline world",
                    body: "Everything works without a network.", topics: ["tech"]),
        ])
        try phone.markRead("hello-offline")
        try phone.addComment(to: "hello-offline", body: "Written on the train.")

        let report = try phone.sync(with: laptop)

        let feed = try laptop.feed(FeedQuery(unreadOnly: false))
        let thread = try laptop.article("hello-offline").comments
        // --- end of the example ---

        #expect(report.sent.changes == 4, "article, read, 2 comment entries")
        #expect(report.sent.applied == 4)
        #expect(feed.count == 1)
        #expect(feed.first?.article.title == "Hello, offline world")
        #expect(feed.first?.readState.isRead == true)
        #expect(feed.first?.commentCount == 1)
        #expect(thread.first?.comment.body == "Written on the train.")
        #expect(thread.first?.comment.author == "alice")
        let event = await refreshed.value
        #expect(event?.origin == .merged)
        #expect(event?.articleIDs == ["hello-offline"])
        #expect(try phone.canonicalDump() == laptop.canonicalDump())

        // The reopened file holds the same state.
        #expect(try Replica.open(at: box.path("laptop.db")).canonicalDump() == laptop.canonicalDump())
    }
}
