import Foundation
import Testing
@testable import ReaderSync

/// Two devices of one account (and a third of another) that change offline and then meet.
struct Devices {
    let clock = ManualWallClock(millis: 1_751_500_000_000)
    let phone: Replica
    let laptop: Replica
    let bob: Replica

    init() throws {
        phone = try Replica.inMemory(account: "alice", options: options(clock: clock, idPrefix: "phone"))
        laptop = try Replica.inMemory(account: "alice", options: options(clock: clock, idPrefix: "laptop"))
        bob = try Replica.inMemory(account: "bob", options: options(clock: clock, idPrefix: "bob"))
        try phone.upsertArticles(try fixtureArticles())
        try sync(phone, laptop)
        try sync(phone, bob)
    }

    func converge() throws {
        try sync(phone, laptop)
        try sync(laptop, bob)
        try sync(phone, bob)
        try sync(phone, laptop)
    }

    func expectSameAccountConverged() throws {
        #expect(try dumpString(phone) == dumpString(laptop))
    }
}

@Suite("Merge rules: each case of Schemas/merge-rules.md")
struct MergeTests {
    @Test func readOnOneDeviceAndSavedOnAnotherBothHold() throws {
        let d = try Devices()
        try d.phone.markRead(mainArticle)
        d.clock.advance(by: 10)
        try d.laptop.save(mainArticle)
        try d.converge()
        try d.expectSameAccountConverged()
        let state = try d.phone.readState(of: mainArticle)
        #expect(state.isRead && state.isSaved)
    }

    @Test func commentsAddedOfflineOnTwoDevicesBothAppearInOneOrderWithReplies() throws {
        let d = try Devices()
        let a = try d.phone.addComment(to: mainArticle, body: "from the phone")
        let b = try d.laptop.addComment(to: mainArticle, body: "from the laptop")   // same millisecond
        d.clock.advance(by: 5)
        let reply = try d.laptop.addComment(to: mainArticle, body: "reply on laptop", replyTo: b.id)
        try d.bob.addComment(to: mainArticle, body: "bob too")
        try d.converge()
        try d.expectSameAccountConverged()
        let threads = [try d.phone.comments(on: mainArticle), try d.laptop.comments(on: mainArticle), try d.bob.comments(on: mainArticle)]
        #expect(threads[0] == threads[1] && threads[1] == threads[2])
        #expect(threads[0].count == 3)
        #expect(Set(threads[0].map(\.comment.id)).isSuperset(of: [a.id, b.id]))
        let laptopThread = try #require(threads[0].first { $0.comment.id == b.id })
        #expect(laptopThread.replies.map(\.comment.id) == [reply.id])
        // Comments and their text are the same for every account.
        #expect(try d.bob.comment(a.id).body == "from the phone")
    }

    @Test func editedOnOneDeviceAndDeletedOnAnotherStaysDeleted() throws {
        let d = try Devices()
        let c = try d.phone.addComment(to: mainArticle, body: "original")
        try d.converge()
        // Deleted first in time, edited later: deletion still wins.
        try d.laptop.deleteComment(c.id)
        d.clock.advance(by: 1000)
        try d.phone.editComment(c.id, body: "edited after the delete")
        try d.converge()
        try d.expectSameAccountConverged()
        for replica in [d.phone, d.laptop, d.bob] {
            let comment = try replica.comment(c.id)
            #expect(comment.isDeleted)
            #expect(comment.body.isEmpty)
        }
        // And it stays deleted: a later edit cannot even be made, and a replay changes nothing.
        #expect(throws: ReaderSyncError.self) { try d.phone.editComment(c.id, body: "again") }
    }

    @Test func furthestProgressWinsUnlessMarkedUnreadAfterIt() throws {
        let d = try Devices()
        try d.phone.setProgress(mainArticle, 0.8)
        d.clock.advance(by: 10)
        try d.laptop.setProgress(mainArticle, 0.3)   // later but less far
        try d.converge()
        try d.expectSameAccountConverged()
        #expect(try d.phone.readState(of: mainArticle).progress == 0.8)

        // Marked unread after the 0.8: reset.
        d.clock.advance(by: 10)
        try d.laptop.markUnread(mainArticle)
        try d.converge()
        #expect(try d.phone.readState(of: mainArticle).progress == 0)

        // Progress written after the reset counts again; progress written before it (offline) does not.
        d.clock.advance(by: 10)
        try d.phone.setProgress(mainArticle, 0.4)
        try d.converge()
        try d.expectSameAccountConverged()
        #expect(try d.laptop.readState(of: mainArticle).progress == 0.4)
    }

    @Test func progressBeforeUnreadArrivingLateDoesNotResurrect() throws {
        let d = try Devices()
        // phone reads far while offline; laptop marks unread later; phone's 0.9 arrives after the reset.
        try d.phone.setProgress(mainArticle, 0.9)
        d.clock.advance(by: 50)
        try d.laptop.setProgress(mainArticle, 0.2)
        d.clock.advance(by: 50)
        try d.laptop.markUnread(mainArticle)
        d.clock.advance(by: 50)
        try d.laptop.setProgress(mainArticle, 0.1)
        try d.converge()
        try d.expectSameAccountConverged()
        #expect(try d.phone.readState(of: mainArticle).progress == 0.1)
    }

    @Test func publisherCorrectionWinsEverywhere() throws {
        let d = try Devices()
        let t0 = Date(timeIntervalSince1970: 1_751_000_000)
        var original = sampleArticle("story", updatedAt: t0, title: "Original")
        try d.bob.upsertArticles([original])
        try d.converge()
        // The correction is made first (older HLC) but carries a newer updatedAt…
        var corrected = original
        corrected.title = "Corrected"
        corrected.updatedAt = t0.addingTimeInterval(3600)
        try d.phone.upsertArticles([corrected])
        // …while a stale copy of the original version is re-published later elsewhere with a newer HLC.
        d.clock.advance(by: 60_000)
        original.body = "stale re-publish of the old version"
        try d.laptop.upsertArticles([original])
        try d.converge()
        for replica in [d.phone, d.laptop, d.bob] {
            #expect(try replica.article("story").article.title == "Corrected")
        }
    }

    @Test func otherConcurrentWritesPickOneWinnerByTimestampThenReplica() throws {
        let d = try Devices()
        // Same millisecond, same counter: the replica id breaks the tie, the same way everywhere.
        try d.phone.save(mainArticle)
        try d.laptop.unsave(mainArticle)
        let phoneEntry = try #require(try d.phone.changeLog(limit: 10_000).last)
        let laptopEntry = try #require(try d.laptop.changeLog(limit: 10_000).last)
        #expect(phoneEntry.change.hlc.millis == laptopEntry.change.hlc.millis)
        try d.converge()
        try d.expectSameAccountConverged()
        let phoneWins = (phoneEntry.change.hlc, phoneEntry.change.origin) > (laptopEntry.change.hlc, laptopEntry.change.origin)
        #expect(try d.phone.readState(of: mainArticle).isSaved == phoneWins)
        // Later beats earlier regardless of replica id.
        d.clock.advance(by: 1)
        try d.laptop.save(mainArticle)
        try d.converge()
        #expect(try d.phone.readState(of: mainArticle).isSaved)
    }

    @Test func readStateNeverCrossesAccounts() throws {
        let d = try Devices()
        try d.phone.markRead(mainArticle)
        try d.phone.save(stocksArticle)
        try d.bob.setProgress(mainArticle, 0.5)
        try d.converge()
        #expect(try d.bob.readState(of: mainArticle).isRead == false)
        #expect(try d.bob.readState(of: stocksArticle).isSaved == false)
        #expect(try d.phone.readState(of: mainArticle).progress == 0)
        let bobDump = try dumpString(d.bob)
        #expect(!bobDump.contains("\"account\" : \"alice\""))
        #expect(try d.bob.changeLog(limit: 10_000).allSatisfy { $0.change.entity != .readState || $0.originAccount == "bob" })
    }

    @Test func nonAuthorWritesAreIgnoredEverywhere() throws {
        // A tampered replica writes an edit to someone else's comment straight into its log; no replica honours it.
        let d = try Devices()
        let c = try d.bob.addComment(to: mainArticle, body: "bob's words")
        try d.converge()
        try d.phone.write("tamper") { db in
            try d.phone.record(db, [Replica.FieldWrite(entity: .comment, key: c.id, field: .body, value: .string("forged"))])
            try d.phone.record(db, [Replica.FieldWrite(entity: .comment, key: c.id, field: .deleted, value: .bool(true))])
        }
        try d.converge()
        for replica in [d.phone, d.laptop, d.bob] {
            let comment = try replica.comment(c.id)
            #expect(comment.body == "bob's words" && !comment.isDeleted)
        }
    }
}

@Suite("Applying bundles: atomic, idempotent, order-insensitive")
struct ApplyTests {
    @Test func applyingTwiceChangesNothingAndOverlapAppliesOnlyTheRest() throws {
        let d = try Devices()
        try d.phone.markRead(mainArticle)
        let first = try d.phone.exportBundleData(for: try d.laptop.knowledge(), account: "alice").data
        try d.phone.save(mainArticle)
        let second = try d.phone.exportBundleData(for: try d.laptop.knowledge(), account: "alice").data   // overlaps first
        let r1 = try d.laptop.applyBundle(data: first)
        #expect(r1.applied == 1)
        let dumpAfterFirst = try dumpString(d.laptop)
        let again = try d.laptop.applyBundle(data: first)
        #expect(again.applied == 0 && again.duplicates == 1)
        #expect(try dumpString(d.laptop) == dumpAfterFirst)
        let r2 = try d.laptop.applyBundle(data: second)
        #expect(r2.applied == 1 && r2.duplicates == 1)
        try d.expectSameAccountConverged()
    }

    @Test func gapIsRefusedNamingWhatIsMissing() throws {
        let d = try Devices()
        try d.phone.markRead(mainArticle)          // phone change 5
        try sync(d.phone, d.laptop)
        try d.phone.save(mainArticle)              // phone change 6
        // Made for the laptop, which holds change 5: it covers only (5, 6].
        let (data, _) = try d.phone.exportBundleData(for: try d.laptop.knowledge(), account: "alice")
        // Another alice device that only holds the articles (changes 1...4, via bob) lacks change 5.
        let other = try Replica.inMemory(account: "alice")
        try sync(d.bob, other)
        let before = try dumpString(other)
        let logBefore = try other.changeLog(limit: 10_000)
        do {
            try other.applyBundle(data: data)
            Issue.record("a bundle with a gap applied")
        } catch let error as ReaderSyncError {
            guard case .missingChanges(let message) = error else { Issue.record("wrong error \(error)"); return }
            #expect(message.contains(d.phone.replicaID.description))
            #expect(message.contains("5...5"))
        }
        #expect(try dumpString(other) == before)
        #expect(try other.changeLog(limit: 10_000) == logBefore)
        // Once the missing change arrives, the same bundle applies.
        try sync(d.laptop, other)
        #expect(throws: Never.self) { try other.applyBundle(data: data) }
    }

    @Test func anotherAccountsReadStateIsRefused() throws {
        let d = try Devices()
        try d.bob.markRead(mainArticle)
        let (data, _) = try d.bob.exportBundleData(for: Knowledge(), account: "bob")
        let before = try dumpString(d.phone)
        do {
            try d.phone.applyBundle(data: data)
            Issue.record("bob's read state was applied to alice's replica")
        } catch let error as ReaderSyncError {
            #expect(error.message.contains("read state of account 'bob'"))
        }
        #expect(try dumpString(d.phone) == before)
        // Without read state it applies.
        let (shared, _) = try d.bob.exportBundleData(for: Knowledge(), account: nil)
        #expect(throws: Never.self) { try d.phone.applyBundle(data: shared) }
    }

    @Test func relayCarriesThirdReplicaChanges() throws {
        let d = try Devices()
        let c = try d.bob.addComment(to: mainArticle, body: "relayed")
        try sync(d.bob, d.laptop)          // bob -> laptop
        try sync(d.laptop, d.phone)        // laptop -> phone carries bob's comment
        #expect(try d.phone.comment(c.id).body == "relayed")
    }

    @Test func pagedExportConverges() throws {
        let d = try Devices()
        for i in 0..<25 { try d.phone.addComment(to: mainArticle, body: "comment \(i)") }
        var pages = 0
        while true {
            let (data, summary) = try d.phone.exportBundleData(for: try d.laptop.knowledge(), account: "alice", maxChanges: 7)
            try d.laptop.applyBundle(data: data)
            pages += 1
            if summary.isComplete { break }
            #expect(pages < 20)
        }
        #expect(pages == 8)   // 50 changes, 7 per page
        try d.expectSameAccountConverged()
    }
}

@Suite("Export pages bounded in bytes")
struct ByteBoundedExportTests {
    @Test func pagesStopAtTheByteBudgetButAlwaysCarryOneChange() throws {
        let source = try Replica.inMemory(account: "alice")
        let big = String(repeating: "long body text ", count: 4000)   // ~60 KB per article
        try source.upsertArticles((0..<10).map { Article(id: "big-\($0)", source: "S", title: "T", body: big) })
        let target = try Replica.inMemory(account: "alice")
        var pages = 0
        while true {
            let (data, summary) = try source.exportBundleData(for: try target.knowledge(), account: "alice", maxBytes: 100_000)
            #expect(summary.header.changeCount >= 1 || summary.isComplete)
            #expect(summary.header.changeCount <= 2)
            try target.applyBundle(data: data)
            pages += 1
            if summary.isComplete { break }
            #expect(pages <= 10)
        }
        #expect(pages >= 5)
        #expect(try dumpString(source) == dumpString(target))
        // A budget smaller than one change still moves one change per page.
        let (_, tiny) = try source.exportBundleData(for: Knowledge(), account: "alice", maxBytes: 1)
        #expect(tiny.header.changeCount == 1 && !tiny.isComplete)
    }
}

@Suite("Compaction never changes what a later change would decide")
struct CompactionSafetyTests {
    /// Progress 0.9 (t1), a reset by "mark unread" (t2) and progress 0.5 (t3), made on three devices, reaching two
    /// replicas in different orders. A replica that saw 0.9 and 0.5 before the reset must not have compacted 0.5
    /// away (0.9 reached further but is older): after the reset, 0.5 is the answer everywhere.
    @Test func progressWrittenAfterALaterArrivingResetSurvivesCompaction() throws {
        let clock = ManualWallClock(millis: 1_751_500_000_000)
        let devices = try (0..<3).map { i in try Replica.inMemory(account: "alice", options: options(clock: clock, idPrefix: "d\(i)")) }
        try devices[0].upsertArticles([sampleArticle("a")])
        for device in devices.dropFirst() { try sync(devices[0], device) }
        try devices[0].setProgress("a", 0.9); clock.advance(by: 10)
        try devices[1].markUnread("a"); clock.advance(by: 10)
        try devices[2].setProgress("a", 0.5)
        func bundle(_ from: Replica) throws -> Data {
            try from.exportBundleData(for: try devices[0].knowledge(), account: "alice").data
        }
        let base = try devices[0].exportBundleData(for: Knowledge(), account: "alice").data
        let first = base, reset = try bundle(devices[1]), later = try bundle(devices[2])
        let x = try Replica.inMemory(account: "alice")
        let y = try Replica.inMemory(account: "alice")
        for data in [first, later, reset] { try x.applyBundle(data: data) }
        for data in [first, reset, later] { try y.applyBundle(data: data) }
        #expect(try x.readState(of: "a").progress == 0.5)
        #expect(try dumpString(x) == dumpString(y))
    }
}
