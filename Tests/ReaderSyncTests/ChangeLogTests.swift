import Foundation
import Testing
@testable import ReaderSync

@Suite("Change log: every mutation records its entries in the same transaction")
struct ChangeLogTests {
    let clock = ManualWallClock(millis: 1_751_500_000_000)
    let replica: Replica

    init() throws {
        replica = try Replica.inMemory(account: "alice", options: options(clock: clock))
        try replica.upsertArticles(try fixtureArticles())
    }

    private func newEntries(_ body: () throws -> Void) throws -> [ChangeLogEntry] {
        let before = try replica.changeLog(limit: 100_000).last?.cursor
        try body()
        return try replica.changeLog(after: before)
    }

    @Test func importRecordsOneContentEntryPerArticle() throws {
        let fresh = try Replica.inMemory(account: "alice", options: options(clock: clock))
        try fresh.upsertArticles(try fixtureArticles())
        let log = try fresh.changeLog()
        #expect(log.count == 4)
        #expect(log.allSatisfy { $0.change.entity == .article && $0.change.field == "content" && $0.change.origin == fresh.replicaID })
        #expect(log.map(\.change.seq) == [1, 2, 3, 4])
        // Importing the same articles again records nothing.
        let summary = try fresh.upsertArticles(try fixtureArticles())
        #expect(summary.unchanged == 4)
        #expect(try fresh.changeLog().count == 4)
    }

    @Test func markReadRecordsReadTime() throws {
        let entries = try newEntries { try replica.markRead(mainArticle) }
        #expect(entries.count == 1)
        #expect(entries[0].change.entity == .readState)
        #expect(entries[0].change.key == mainArticle)
        #expect(entries[0].change.field == ChangeField.read)
        #expect(entries[0].change.value == .int(clock.nowMillis()))
        #expect(try replica.readState(of: mainArticle).isRead)
    }

    @Test func markUnreadRecordsReadNullAndProgressReset() throws {
        try replica.markRead(mainArticle)
        let entries = try newEntries { try replica.markUnread(mainArticle) }
        #expect(entries.map(\.change.field).sorted() == [ChangeField.progress, ChangeField.read])
        #expect(entries.allSatisfy { $0.change.value == .null })
        #expect(try replica.readState(of: mainArticle).isRead == false)
    }

    @Test func progressRecordsFraction() throws {
        let entries = try newEntries { try replica.setProgress(mainArticle, 0.25) }
        #expect(entries.map(\.change.field) == [ChangeField.progress])
        #expect(entries[0].change.value == .double(0.25))
        #expect(try replica.readState(of: mainArticle).progress == 0.25)
    }

    @Test func saveAndUnsaveRecordSavedField() throws {
        let saved = try newEntries { try replica.save(mainArticle) }
        #expect(saved.map(\.change.field) == [ChangeField.saved])
        #expect(saved[0].change.value == .int(clock.nowMillis()))
        let unsaved = try newEntries { try replica.unsave(mainArticle) }
        #expect(unsaved.map(\.change.value) == [.null])
        #expect(try replica.readState(of: mainArticle).isSaved == false)
    }

    @Test func commentAddRecordsCreationAndBody() throws {
        var comment: ReaderSync.Comment?
        let entries = try newEntries { comment = try replica.addComment(to: mainArticle, body: "  First!  ") }
        let id = try #require(comment?.id)
        #expect(entries.map(\.change.field) == [ChangeField.commentCreated, ChangeField.commentBody])
        #expect(entries.allSatisfy { $0.change.key == id && $0.change.entity == .comment })
        #expect(entries[1].change.value == .string("First!"))
        #expect(comment?.author == "alice")
    }

    @Test func replyRecordsParent() throws {
        let parent = try replica.addComment(to: mainArticle, body: "parent")
        let entries = try newEntries { try replica.addComment(to: mainArticle, body: "child", replyTo: parent.id) }
        let created = try #require(entries.first?.change.value.stringValue)
        #expect(created.contains("\"parent\":\"\(parent.id)\""))
        #expect(try replica.comments(on: mainArticle).first?.replies.first?.comment.body == "child")
    }

    @Test func commentEditAndDeleteRecordTheirFields() throws {
        let comment = try replica.addComment(to: mainArticle, body: "draft")
        clock.advance(by: 1000)
        let edit = try newEntries { try replica.editComment(comment.id, body: "final") }
        #expect(edit.map(\.change.field) == [ChangeField.commentBody])
        #expect(try replica.comment(comment.id).editedAt != nil)
        let delete = try newEntries { try replica.deleteComment(comment.id) }
        #expect(delete.map(\.change.field) == [ChangeField.commentDeleted])
        #expect(delete[0].change.value == .bool(true))
        let after = try replica.comment(comment.id)
        #expect(after.isDeleted && after.body.isEmpty)
    }

    @Test func upsertOfChangedArticleRecordsNewVersion() throws {
        var article = try #require(try fixtureArticles().first)
        article.title = "Corrected title"
        let entries = try newEntries { try replica.upsertArticles([article]) }
        #expect(entries.count == 1)
        #expect(try replica.article(article.id).article.title == "Corrected title")
    }

    @Test func failedMutationLeavesNeitherDataNorEntries() throws {
        let dumpBefore = try dumpString(replica)
        let logBefore = try replica.changeLog(limit: 100_000)
        #expect(throws: ReaderSyncError.self) { try replica.markRead("no-such-article") }
        #expect(throws: ReaderSyncError.self) { try replica.setProgress(mainArticle, 1.5) }
        #expect(throws: ReaderSyncError.self) { try replica.addComment(to: mainArticle, body: "   ") }
        #expect(throws: ReaderSyncError.self) { try replica.addComment(to: mainArticle, body: "x", replyTo: "nope") }
        // One good and one bad article: all or nothing.
        #expect(throws: ReaderSyncError.self) {
            try replica.upsertArticles([sampleArticle("fine"), Article(id: "bad", source: "", title: "t", body: "b")])
        }
        #expect(try dumpString(replica) == dumpBefore)
        #expect(try replica.changeLog(limit: 100_000) == logBefore)
    }

    @Test func errorThrownInsideTheTransactionRollsBackEverything() throws {
        // A failure after the entries were written (a duplicate comment id on insert) must leave nothing.
        let fixed = try Replica.inMemory(account: "alice", options: ReplicaOptions(wallClock: clock, makeID: { "same-id" }))
        try fixed.upsertArticles([sampleArticle("a")])
        try fixed.addComment(to: "a", body: "one")
        let before = try fixed.changeLog()
        let status = try fixed.status()
        #expect(throws: ReaderSyncError.self) { try fixed.addComment(to: "a", body: "two") }
        #expect(try fixed.changeLog() == before)
        #expect(try fixed.status().lastSequence == status.lastSequence)
        #expect(try fixed.status().clock == status.clock)
    }

    @Test func onlyTheAuthorMayEditOrDelete() throws {
        let bob = try Replica.inMemory(account: "bob", options: options(clock: clock, idPrefix: "b"))
        try sync(replica, bob)
        let comment = try bob.addComment(to: mainArticle, body: "bob's")
        try sync(replica, bob)
        #expect(throws: ReaderSyncError.forbidden("comment \(comment.id) was written by bob; only its author can change it")) {
            try replica.editComment(comment.id, body: "hijacked")
        }
        #expect(throws: ReaderSyncError.self) { try replica.deleteComment(comment.id) }
        #expect(try replica.comment(comment.id).body == "bob's")
    }

    @Test func supersededEntriesAreCompacted() throws {
        for i in 1...10 { try replica.setProgress(mainArticle, Double(i) / 10) }
        for _ in 1...5 { try replica.save(mainArticle); try replica.unsave(mainArticle) }
        let entries = try replica.changeLog(limit: 100_000).filter { $0.change.entity == .readState }
        // Only the furthest progress and the last saved value still decide anything.
        #expect(entries.count == 2)
        #expect(try replica.readState(of: mainArticle).progress == 1.0)
    }

    @Test func eventsAreDeliveredAfterCommit() async throws {
        let stream = replica.events()
        try await replica.markRead(mainArticle)
        var iterator = stream.makeAsyncIterator()
        let event = await iterator.next()
        #expect(event?.readStateArticleIDs == [mainArticle])
        #expect(event?.origin == .local)
    }

    @Test("a reader that falls behind loses no event: waiting events merge, in order, never dropped")
    func slowReaderLosesNothing() async throws {
        let target = try Replica.inMemory(account: "alice")
        try await target.upsertArticles((0..<600).map { sampleArticle("s\($0)") } + [sampleArticle("last")])
        let stream = target.events()
        // 600 local events and, between them, merged ones, all while nobody reads.
        let peer = try Replica.inMemory(account: "alice", options: options(clock: clock, idPrefix: "p"))
        try await peer.upsertArticles([sampleArticle("peer-0")])
        for i in 0..<600 {
            try await target.markRead("s\(i)")
            if i % 150 == 0 {
                try await peer.save("peer-0")
                try await target.applyBundle(data: try peer.exportBundleData(for: target.knowledge(), account: "alice").data)
            }
        }
        try await target.markRead("last")  // the last event: once it is read, everything before it was
        var read = Set<String>()
        var events = 0
        for await event in stream {
            events += 1
            read.formUnion(event.readStateArticleIDs)
            if event.readStateArticleIDs.contains("last") { break }
        }
        #expect(read == Set((0..<600).map { "s\($0)" } + ["peer-0", "last"]))
        #expect(events < 20, "consecutive events merged while the reader was away")
    }

    @Test("merging waiting events: ids unite, mixed origins say merged, and a truncated event stops growing")
    func eventsAbsorb() {
        var first = ReplicaEvent(origin: .local, articleIDs: ["a"], commentIDs: [], readStateArticleIDs: ["a"])
        first.absorb(ReplicaEvent(origin: .merged, articleIDs: ["b"], commentIDs: ["c"], readStateArticleIDs: []))
        #expect(first.origin == .merged && first.articleIDs == ["a", "b"] && first.commentIDs == ["c"] && !first.isTruncated)
        var big = ReplicaEvent(origin: .merged, articleIDs: Set((0...ReplicaEvent.maxListedIDs).map { "x\($0)" }),
                               commentIDs: [], readStateArticleIDs: [])
        big.absorb(ReplicaEvent(origin: .merged, articleIDs: ["y"], commentIDs: [], readStateArticleIDs: []))
        #expect(big.isTruncated)
        let held = big.articleIDs.count
        big.absorb(ReplicaEvent(origin: .local, articleIDs: ["z"], commentIDs: ["w"], readStateArticleIDs: ["z"]))
        #expect(big.isTruncated && big.articleIDs.count == held && big.commentIDs.isEmpty)
    }

    @Test func mergedBundlesProduceOneEventNamingWhatChanged() async throws {
        let other = try Replica.inMemory(account: "alice", options: options(clock: clock, idPrefix: "o"))
        try await replica.markRead(mainArticle)
        let stream = other.events()
        try sync(replica, other)
        var iterator = stream.makeAsyncIterator()
        let event = await iterator.next()
        #expect(event?.origin == .merged)
        #expect(event?.articleIDs.count == 4)
        #expect(event?.readStateArticleIDs == [mainArticle])
    }

    @Test func largeMergeMaterializesInBatchesAndSaysItIsTruncated() async throws {
        let source = try Replica.inMemory(account: "bob", options: options(clock: clock, idPrefix: "big"))
        try await source.upsertArticles([sampleArticle("a")])
        for i in 0..<10_100 { try await source.addComment(to: "a", body: "comment \(i)") }
        let target = try Replica.inMemory(account: "alice")
        let stream = target.events()
        try await target.applyBundle(data: try source.exportBundleData(for: Knowledge(), account: nil).data)
        #expect(try dumpString(target) == dumpString(source))
        var iterator = stream.makeAsyncIterator()
        let event = await iterator.next()
        #expect(event?.isTruncated == true)
        #expect((event?.commentIDs.count ?? 0) < 10_100)
    }
}
