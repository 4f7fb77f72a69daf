import Foundation
import GRDB
import Testing
@testable import ReaderSync

@Suite("Bodies and the storage budget")
struct BodyTests {
    static let day: Int64 = 86_400_000
    static let now: Int64 = 1_760_000_000_000

    /// A server-like source replica with `count` articles of ~2 KB bodies, published a day apart going back.
    func source(_ count: Int, clock: ManualWallClock) throws -> Replica {
        let r = try Replica.inMemory(account: "publisher", options: options(clock: clock, idPrefix: "p"))
        var articles: [Article] = []
        for i in 0..<count {
            let body = (0..<40).map { "Paragraph \($0) of story \(i) about harbours and ferries." }.joined(separator: "\n\n")
            articles.append(Article(id: "story-\(i)", source: "Wire", title: "Story \(i)", body: body,
                                    publishedAt: Date(timeIntervalSince1970: Double(Self.now - Int64(i) * Self.day) / 1000)))
        }
        try r.upsertArticles(articles)
        return r
    }

    func device(_ dir: TempDir, _ name: String = "device.db", clock: ManualWallClock) throws -> Replica {
        try Replica.create(at: dir.path(name), account: "alice", options: options(clock: clock, idPrefix: name))
    }

    func logState(_ r: Replica) throws -> (entries: Int, knowledge: Knowledge, clock: HLCTimestamp) {
        let status = try r.status()
        return (status.logEntries, try r.knowledge(), status.clock)
    }

    @Test("eviction and putting a body back are not changes: log, knowledge and clock stay")
    func notAChange() throws {
        let clock = ManualWallClock(millis: Self.now)
        let dir = TempDir()
        let src = try source(5, clock: clock)
        let dev = try device(dir, clock: clock)
        try sync(src, dev)
        try dev.markRead("story-1")
        let before = try logState(dev)
        #expect(try dev.evictBody(of: "story-1"))
        #expect(try dev.bodyState(of: "story-1") == .evicted)
        #expect(try dev.article("story-1").article.body == "")
        #expect(try dev.article("story-1").bodyState == .evicted)
        var after = try logState(dev)
        #expect(after.entries == before.entries && after.knowledge == before.knowledge && after.clock == before.clock)
        // The feed still lists it with its title and state.
        #expect(try dev.feed().contains { $0.article.id == "story-1" && $0.article.title == "Story 1" && $0.readState.isRead })
        let report = try dev.fillBodies(try src.articleBodies(["story-1"]))
        #expect(report.filled == 1)
        #expect(try dev.bodyState(of: "story-1") == .held)
        #expect(try dev.article("story-1").article.body == (try src.article("story-1").article.body))
        after = try logState(dev)
        #expect(after.entries == before.entries && after.knowledge == before.knowledge && after.clock == before.clock)
    }

    @Test("a body whose digest does not match is refused, and nothing is written")
    func forgedBody() throws {
        let clock = ManualWallClock(millis: Self.now)
        let src = try source(2, clock: clock)
        let dev = try Replica.inMemory(account: "alice", options: options(clock: clock))
        try sync(src, dev)
        try dev.markRead("story-0")
        try dev.evictBody(of: "story-0")
        let forged = ArticleBody(id: "story-0", body: "Something else entirely")
        var lying = ArticleBody(id: "story-0", body: "Something else")
        lying.sha256 = try src.articleBodies(["story-0"])[0].sha256
        let report = try dev.fillBodies([forged, lying])
        #expect(report.filled == 0 && report.rejected == 2)
        #expect(try dev.bodyState(of: "story-0") == .evicted)
    }

    @Test("saved articles and recent unread articles keep their bodies; the budget holds after each sync")
    func budgetHolds() throws {
        let clock = ManualWallClock(millis: Self.now)
        let dir = TempDir()
        let src = try source(400, clock: clock)
        let dev = try device(dir, clock: clock)
        try sync(src, dev)
        let full = try dev.storageBytes()
        // Read everything older than 3 days except two saved ones; keep unread for 10 days.
        for i in 3..<400 where i != 50 && i != 60 { try dev.markRead("story-\(i)") }
        try dev.save("story-50")
        try dev.markRead("story-60")
        try dev.save("story-60")
        let budget = StorageBudget(bytes: full / 3, keepUnreadFor: 10 * 86_400)
        try dev.setStorageBudget(budget)
        let report = try dev.enforceStorageBudget()
        #expect(report.evicted > 0)
        #expect(!report.stillOverBudget)
        #expect(try dev.storageBytes() <= budget.bytes)
        for id in ["story-0", "story-1", "story-2", "story-50", "story-60"] {
            #expect(try dev.bodyState(of: id) == .held, "\(id)")
        }
        // Every title, read state and the feed stay.
        #expect(try dev.feed().count == 400)
        #expect(try dev.feed(FeedQuery(unreadOnly: true)).count == 3 + 1)
        // More articles arrive: the sync itself enforces the budget.
        let more = (400..<600).map { i in
            Article(id: "story-\(i)", source: "Wire", title: "Story \(i)",
                    body: String(repeating: "Fresh text about tides. ", count: 80),
                    publishedAt: Date(timeIntervalSince1970: Double(Self.now - 11 * Self.day) / 1000))
        }
        try src.upsertArticles(more)
        let sync = try dev.sync(with: src)
        #expect(sync.eviction?.budget == budget)
        #expect(try dev.storageBytes() <= budget.bytes || sync.eviction?.stillOverBudget == true)
        #expect(try dev.bodyState(of: "story-50") == .held && dev.bodyState(of: "story-60") == .held)
        // Unread articles published 11 days ago are older than the protection: they may go, saved ones never.
        #expect(try dev.storageBytes() <= budget.bytes)
        // The sync did not bring back what the budget had evicted (the source holds every body).
        #expect(sync.bodiesReceived == 0)
    }

    @Test("an evicting replica still syncs: it sends bodies by reference, and the receiver gets them from a holder")
    func byReference() throws {
        let clock = ManualWallClock(millis: Self.now)
        let src = try source(3, clock: clock)
        let a = try Replica.inMemory(account: "alice", options: options(clock: clock, idPrefix: "a"))
        let b = try Replica.inMemory(account: "alice", options: options(clock: clock, idPrefix: "b"))
        try sync(src, a)
        try a.markRead("story-2")
        #expect(try a.evictBody(of: "story-2"))
        // b learns everything from a alone: story-2 arrives by reference.
        let bundle = try a.exportBundleData(for: try b.knowledge(), account: "alice").data
        try b.applyBundle(data: bundle)
        #expect(try b.bodyState(of: "story-2") == .notReceived)
        #expect(try b.article("story-2").article.title == "Story 2")
        #expect(try b.bodyState(of: "story-1") == .held)
        // Dumps agree on everything but which bodies are held.
        #expect(try a.canonicalDump(bodies: .digests) == b.canonicalDump(bodies: .digests))
        #expect(try b.canonicalDump(account: "nobody", bodies: .digests) == src.canonicalDump(account: "nobody", bodies: .digests))
        // A sync with a replica that holds the body brings it back, both ways.
        let report = try b.sync(with: src)
        #expect(report.bodiesReceived == 1)
        #expect(try b.bodyState(of: "story-2") == .held)
        let back = try a.sync(with: b)
        #expect(back.bodiesReceived == 1)
        #expect(try a.canonicalDump() == b.canonicalDump())
    }

    @Test("a body this replica wrote stays until a peer acknowledges holding it")
    func ownBodiesWaitForAcknowledgement() throws {
        let clock = ManualWallClock(millis: Self.now)
        let a = try Replica.inMemory(account: "alice", options: options(clock: clock, idPrefix: "a"))
        try a.upsertArticles([sampleArticle("mine")])
        try a.markRead("mine")
        #expect(try !a.evictBody(of: "mine"))
        let b = try Replica.inMemory(account: "alice", options: options(clock: clock, idPrefix: "b"))
        try sync(a, b)
        // b acknowledged a's changes in the bundle it sent back.
        #expect(try a.evictBody(of: "mine"))
    }

    @Test("re-importing an evicted article brings its body back without recording a change")
    func reimport() throws {
        let clock = ManualWallClock(millis: Self.now)
        let src = try source(2, clock: clock)
        let dev = try Replica.inMemory(account: "alice", options: options(clock: clock))
        try sync(src, dev)
        try dev.markRead("story-0")
        try dev.evictBody(of: "story-0")
        let before = try dev.status().logEntries
        let summary = try dev.upsertArticles([try src.article("story-0").article])
        #expect(summary.unchanged == 1 && summary.updated == 0)
        #expect(try dev.bodyState(of: "story-0") == .held)
        #expect(try dev.status().logEntries == before)
    }

    @Test("sizes parse with units and bad ones are named", arguments: [
        ("50MB", Int64(50_000_000)), ("1KB", 1000), ("1.5 GB", 1_500_000_000), ("512KiB", 524_288), ("100", 100),
        ("2mib", 2_097_152),
    ])
    func sizes(text: String, bytes: Int64) throws {
        #expect(try StorageBudget.parseSize(text) == bytes)
    }

    @Test("bad sizes", arguments: ["", "MB", "50XB", "-5MB", "0", "1e3"])
    func badSizes(text: String) {
        #expect(throws: ReaderSyncError.self) { try StorageBudget.parseSize(text) }
    }

    @Test("a server replica refuses a budget")
    func serverKeepsBodies() throws {
        let server = try Replica.inMemory(account: "server", role: .server)
        #expect(throws: ReaderSyncError.self) { try server.setStorageBudget(StorageBudget(bytes: 1_000_000)) }
    }

    @Test("content by reference is checked: a malformed digest is an invalid value")
    func malformedReference() throws {
        #expect(throws: ValueProblem.self) {
            try ArticleContent.decode(#"{"bodySHA256":"XYZ","related":[],"source":"S","title":"T","topics":[]}"#)
        }
        let good = try ArticleContent.decode(#"{"bodySHA256":"\#(String(repeating: "ab", count: 32))","related":[],"source":"S","title":"T","topics":[]}"#)
        #expect(good.heldBody == nil && good.bodyReference?.count == 32)
        #expect(good.encoded().hasPrefix(#"{"bodySHA256":"abab"#))
    }
}
