import Foundation
import Testing
@testable import ReaderSync

/// The cases of silent divergence found from outside (issue "Silent divergence"): each one left replicas that
/// disagree for good while every sync said it succeeded, or broke a replica. Each test here failed on v1.
@Suite("Silent divergence: identities, keys, values and clocks")
struct DivergenceTests {
    static let t0: Int64 = 1_751_544_000_000  // 2025-07-03T12:00:00Z
    static let peer = ReplicaID(bytes: [UInt8](repeating: 0x5A, count: 16)) ?? ReplicaID.random()

    /// A bundle written by `source` (account `account`) carrying `changes`, each range from 0.
    static func bundle(_ changes: [Change], source: ReplicaID = peer, account: String = "alice",
                       writtenAt: Int64? = nil) throws -> Data {
        var origins: [BundleOriginInfo] = []
        for c in changes where !origins.contains(BundleOriginInfo(id: c.origin, account: c.account)) {
            origins.append(BundleOriginInfo(id: c.origin, account: c.account))
        }
        var ranges: [KnowledgeRange] = []
        for info in origins {
            for scope in ChangeScope.allCases {
                let seqs = changes.filter { $0.origin == info.id && $0.account == info.account && $0.scope == scope }.map(\.seq)
                guard let hi = seqs.max() else { continue }
                ranges.append(KnowledgeRange(origin: info.id, account: info.account, scope: scope, from: 0, to: hi,
                                             toIncarnation: 7))
            }
        }
        let writer = try BundleWriter(source: source, account: account, schemaVersion: UInt16(StoreSchema.currentVersion),
                                      writtenAtMillis: writtenAt, origins: origins, ranges: ranges)
        for change in changes { try writer.append(change) }
        return try writer.finishData().1
    }

    static func change(_ seq: UInt64, _ entity: EntityKind, _ key: String, _ field: String, _ value: ChangeValue,
                       millis: Int64 = t0, account: String = "alice", origin: ReplicaID = peer) -> Change {
        Change(origin: origin, account: account, seq: seq, hlc: HLCTimestamp(millis: UInt64(millis), counter: 0),
               entity: entity, key: key, field: field, value: value)
    }

    static func article(_ seq: UInt64, _ id: String, title: String = "T", millis: Int64 = t0) -> Change {
        change(seq, .article, id, ChangeField.articleContent,
               .string(ArticleContent(Article(id: id, source: "S", title: title, body: "b")).encoded()), millis: millis)
    }

    /// The `invalidBundle`/`clockSkew` message applying `data` throws, checking nothing changed.
    static func refusal(_ replica: Replica, _ data: Data) throws -> String {
        let before = try dumpString(replica)
        let knowledge = try replica.knowledge()
        var message = ""
        do {
            try replica.applyBundle(data: data)
            Issue.record("the bundle was applied")
        } catch let error as ReaderSyncError {
            message = error.message
        }
        #expect(try dumpString(replica) == before, "a refused bundle leaves the replica as it was")
        #expect(try replica.knowledge() == knowledge)
        return message
    }

    // MARK: 1. Identity

    @Test("a replica restored from a backup continues under a new identity and nothing is lost")
    func restoredFromBackup() throws {
        let dir = TempDir()
        let clock = ManualWallClock(millis: Self.t0)
        let phonePath = dir.path("phone.db"), backup = dir.path("backup.db")
        let laptop = try Replica.create(at: dir.path("laptop.db"), account: "alice", options: options(clock: clock, idPrefix: "l"))
        do {
            let phone = try Replica.create(at: phonePath, account: "alice", options: options(clock: clock, idPrefix: "p"))
            try phone.upsertArticles([sampleArticle("a")])
            try phone.addComment(to: "a", body: "first")
            try sync(phone, laptop)
        }
        try FileManager.default.copyItem(atPath: phonePath, toPath: backup)
        let originalID: ReplicaID
        do {
            clock.advance(by: 1_000)
            let phone = try Replica.open(at: phonePath, options: options(clock: clock, idPrefix: "p2"))
            originalID = phone.replicaID
            try phone.addComment(to: "a", body: "second, lost on v1")
            try sync(phone, laptop)
        }
        // The backup comes back, and the user goes on writing.
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: phonePath + suffix) }
        try FileManager.default.copyItem(atPath: backup, toPath: phonePath)
        clock.advance(by: 1_000)
        let phone = try Replica.open(at: phonePath, options: options(clock: clock, idPrefix: "p3"))
        try phone.addComment(to: "a", body: "third, made after the restore")
        let report = try phone.sync(with: laptop)
        #expect(!report.identityChanges.isEmpty, "the restore is noticed")
        #expect(phone.replicaID != originalID, "the restored phone continues under a new id")
        _ = try phone.sync(with: laptop)
        #expect(try dumpString(phone) == dumpString(laptop))
        let bodies = Set(try laptop.comments(on: "a").flatMap { [$0.comment] + $0.replies.map(\.comment) }.map(\.body))
        #expect(bodies == ["first", "second, lost on v1", "third, made after the restore"])
        // A third replica that only meets the laptop gets all of it too.
        let tablet = try Replica.inMemory(account: "alice", options: options(clock: clock, idPrefix: "t"))
        try sync(tablet, laptop)
        #expect(try dumpString(tablet) == dumpString(laptop))
    }

    @Test("a replica file copied to a second device: both copies keep writing and converge")
    func copiedFile() throws {
        let dir = TempDir()
        let clock = ManualWallClock(millis: Self.t0)
        do {
            let original = try Replica.create(at: dir.path("a.db"), account: "alice", options: options(clock: clock, idPrefix: "a"))
            try original.upsertArticles([sampleArticle("x")])
        }
        try FileManager.default.copyItem(atPath: dir.path("a.db"), toPath: dir.path("b.db"))
        let a = try Replica.open(at: dir.path("a.db"), options: options(clock: clock, idPrefix: "a"))
        let b = try Replica.open(at: dir.path("b.db"), options: options(clock: clock, idPrefix: "b"))
        try a.addComment(to: "x", body: "on a")
        try b.addComment(to: "x", body: "on b")
        try a.markRead("x")
        try b.save("x")
        _ = try a.sync(with: b)
        _ = try a.sync(with: b)
        #expect(a.replicaID != b.replicaID, "one of the two copies took a new identity")
        #expect(try dumpString(a) == dumpString(b))
        #expect(try a.comments(on: "x").count == 2)
        let state = try a.readState(of: "x")
        #expect(state.isRead && state.isSaved)
    }

    // MARK: 3–5. Keys and numbers

    @Test("canonically equal keys that differ in bytes stay two targets everywhere")
    func canonicalEquivalentsStayApart() throws {
        let nfc = "caf\u{E9}", nfd = "cafe\u{301}"
        #expect(nfc == nfd, "Swift's String == says they are equal")
        let a = try Replica.inMemory(account: "alice")
        try a.upsertArticles([sampleArticle(nfc, title: "NFC"), sampleArticle(nfd, title: "NFD")])
        try a.markRead(nfc)
        try a.save(nfd)
        let b = try Replica.inMemory(account: "alice")
        try sync(a, b)
        for replica in [a, b] {
            #expect(try replica.feed().count == 2)
            #expect(try replica.article(nfc).article.title == "NFC")
            #expect(try replica.article(nfd).article.title == "NFD")
            #expect(try replica.readState(of: nfc).isRead && !replica.readState(of: nfc).isSaved)
            #expect(try replica.readState(of: nfd).isSaved && !replica.readState(of: nfd).isRead)
        }
        #expect(try dumpString(a) == dumpString(b))
        // One bundle carrying `read` for one and `saved` for the other keeps both.
        let c = try Replica.inMemory(account: "alice")
        try c.applyBundle(data: try Self.bundle([
            Self.article(1, nfc), Self.article(2, nfd),
            Self.change(3, .readState, nfc, ChangeField.read, .int(Self.t0)),
            Self.change(4, .readState, nfd, ChangeField.saved, .int(Self.t0)),
        ]))
        #expect(try c.readState(of: nfc).isRead && !c.readState(of: nfc).isSaved)
        #expect(try c.readState(of: nfd).isSaved && !c.readState(of: nfd).isRead)
    }

    @Test("ids with control characters, NUL included, are refused locally and in bundles")
    func controlCharactersInIDs() throws {
        let replica = try Replica.inMemory(account: "alice")
        try replica.upsertArticles([sampleArticle("story")])
        for id in ["story\u{0}x", "tab\tid", "del\u{7F}", "c1\u{85}", "", "   "] {
            #expect(throws: ReaderSyncError.self) { try replica.upsertArticles([sampleArticle(id)]) }
        }
        #expect(try replica.article("story").article.title == "Title", "story is untouched")
        let message = try Self.refusal(replica, try Self.bundle([Self.article(1, "story\u{0}x")]))
        #expect(message.contains("U+0000"), "\(message)")
    }

    @Test("sequence numbers and range ends beyond what the store holds are refused, never wrapped")
    func hugeSequenceNumbers() throws {
        let replica = try Replica.inMemory(account: "alice")
        // ReaderSync never writes one (its writer refuses)…
        do {
            _ = try Self.bundle([Self.article(UInt64(Int64.max) + 1, "a")])
            Issue.record("a bundle with seq 2^63 was written")
        } catch let error as ReaderSyncError {
            #expect(error.message.contains("9223372036854775807"), "\(error.message)")
        }
        // …and a received range end past it is refused (BundleFormatTests forge them byte by byte too).
        let receiverKnowledge = try replica.knowledge()
        #expect(throws: ReaderSyncError.self) {
            _ = try Knowledge.decode(json: Data(#"{"format":"readersync-knowledge/2","entries":[{"origin":"5a5a5a5a-5a5a-5a5a-5a5a-5a5a5a5a5a5a","account":"alice","scope":"shared","seq":9223372036854775808}]}"#.utf8))
        }
        #expect(try replica.knowledge() == receiverKnowledge)
        // The largest the store can hold works end to end, and is relayed intact.
        try replica.applyBundle(data: try Self.bundle([Self.article(UInt64(Int64.max), "a")]))
        let relay = try Replica.inMemory(account: "alice")
        try sync(replica, relay)
        #expect(try relay.article("a").article.title == "T")
        #expect(try relay.knowledge().entries.values.contains { $0.seq == UInt64(Int64.max) })
    }

    // MARK: 6–7. Values and sizes

    @Test("a value outside its field's rule refuses the bundle, naming the change",
          arguments: [
              (ChangeField.progress, ChangeValue.double(.infinity)), (ChangeField.progress, .double(.nan)),
              (ChangeField.progress, .double(1.5)), (ChangeField.progress, .double(-0.5)), (ChangeField.progress, .double(-0.0)),
              (ChangeField.read, .string("yesterday")), (ChangeField.read, .int(-5)), (ChangeField.saved, .bool(false)),
              (ChangeField.read, .int(253_402_300_800_000)),
          ])
    func readStateValuesOutOfRange(field: String, value: ChangeValue) throws {
        let replica = try Replica.inMemory(account: "alice")
        let message = try Self.refusal(replica, try Self.bundle([Self.change(1, .readState, "a", field, value)]))
        #expect(message.contains(field) && message.contains("#1"), "\(message)")
    }

    @Test("comment and article values of the wrong type or shape are refused, naming the change")
    func wrongTypedValues() throws {
        let replica = try Replica.inMemory(account: "alice")
        let created = CommentCreation(article: "a", parent: nil).encoded()
        let cases: [Change] = [
            Self.change(1, .comment, "alice:c", ChangeField.commentDeleted, .bool(false)),
            Self.change(1, .comment, "alice:c", ChangeField.commentBody, .int(42)),
            Self.change(1, .comment, "alice:c", ChangeField.commentBody, .string("   ")),
            Self.change(1, .comment, "alice:c", ChangeField.commentCreated, .string("{\"article\": \"a\"}")),
            Self.change(1, .comment, "alice:c", ChangeField.commentCreated,
                        .string(CommentCreation(article: "a", parent: "alice:c").encoded())),
            Self.change(1, .article, "a", ChangeField.articleContent, .string("not json")),
            Self.change(1, .article, "a", ChangeField.articleContent, .string("{\"source\":\"S\"}")),
            Self.change(1, .article, "a", ChangeField.articleContent, .int(3)),
        ]
        for bad in cases {
            let message = try Self.refusal(replica, try Self.bundle([bad]))
            #expect(message.contains("#1") && message.contains(bad.field), "\(message)")
        }
        // The well-formed creation is taken.
        try replica.applyBundle(data: try Self.bundle([Self.article(1, "a"),
                                                       Self.change(2, .comment, "alice:c", ChangeField.commentCreated, .string(created)),
                                                       Self.change(3, .comment, "alice:c", ChangeField.commentBody, .string("hi"))]))
        #expect(try replica.comment("alice:c").body == "hi")
    }

    @Test("an article that could never be exported is refused where it enters")
    func oversizedArticles() throws {
        let replica = try Replica.inMemory(account: "alice")
        let huge = String(repeating: "x", count: 17 << 20)
        let escaped = String(repeating: "\u{1}", count: 3 << 20)  // 6 bytes each as JSON: 18 MiB
        for article in [Article(id: "t", source: "S", title: huge, body: "b"), Article(id: "s", source: huge, title: "T", body: "b"),
                        Article(id: "b", source: "S", title: "T", body: escaped)] {
            #expect(throws: ReaderSyncError.self) { try replica.upsertArticles([article]) }
        }
        #expect(try replica.feed().isEmpty)
        // And the replica still exports (nothing unexportable got in).
        _ = try replica.exportBundleData(for: Knowledge(), account: "alice")
    }

    // MARK: 8–9. Clocks and comments

    @Test("a device whose clock ran 2 hours ahead stamps sane times again once it is fixed, and peers take its changes")
    func clockAheadThenFixed() throws {
        let wrong = ManualWallClock(millis: Self.t0 + 2 * 3_600_000)
        let phone = try Replica.inMemory(account: "alice", options: options(clock: wrong, idPrefix: "p"))
        try phone.upsertArticles([sampleArticle("a")])
        try phone.markRead("a")
        wrong.set(Self.t0 + 60_000)  // the clock is fixed
        try phone.save("a")
        let lastStamp = try phone.status().clock
        #expect(lastStamp.millis <= UInt64(Self.t0 + 60_000 + ClockBounds().maxLeadMillis + 1), "no longer pinned 2 hours ahead")

        let right = ManualWallClock(millis: Self.t0 + 60_000)
        let laptop = try Replica.inMemory(account: "alice", options: options(clock: right, idPrefix: "l"))
        try sync(phone, laptop)  // changes made while 2 hours ahead are taken (within the 24 h bound)
        #expect(try laptop.readState(of: "a").isRead && laptop.readState(of: "a").isSaved)
        #expect(try laptop.status().clock.millis <= UInt64(Self.t0 + 60_000 + ClockBounds().maxLeadMillis + 1),
                "the laptop's clock follows only up to the lead bound")
        // The laptop marks it unread now: its action wins over the phone's future-stamped read.
        try laptop.markUnread("a")
        try sync(phone, laptop)
        #expect(try !phone.readState(of: "a").isRead && !laptop.readState(of: "a").isRead)
    }

    @Test("a receiver whose clock is slow takes correct peers' changes; past the bound the message names whose clock is off")
    func receiverClockBehind() throws {
        let right = ManualWallClock(millis: Self.t0)
        let phone = try Replica.inMemory(account: "alice", options: options(clock: right, idPrefix: "p"))
        try phone.upsertArticles([sampleArticle("a")])
        let slow = ManualWallClock(millis: Self.t0 - 3_600_000)
        let laptop = try Replica.inMemory(account: "alice", options: options(clock: slow, idPrefix: "l"))
        try sync(phone, laptop)
        #expect(try laptop.feed().count == 1, "one hour slow is not a reason to refuse")

        try phone.markRead("a")
        let dead = ManualWallClock(millis: Self.t0 - 3 * 86_400_000)
        let tablet = try Replica.inMemory(account: "alice", options: options(clock: dead, idPrefix: "t"))
        let data = try phone.exportBundleData(for: Knowledge(), account: "alice").data
        let message = try Self.refusal(tablet, data)
        #expect(message.contains("this device's clock is 3 days behind"), "\(message)")
    }

    @Test("a change stamped before the floor is refused; a device whose clock reads 1970 stamps the floor")
    func clockFloor() throws {
        let replica = try Replica.inMemory(account: "alice")
        let message = try Self.refusal(replica, try Self.bundle([Self.article(1, "a", millis: 1_000)]))
        #expect(message.contains("2020-01-01"), "\(message)")
        let dead = ManualWallClock(millis: 0)
        let old = try Replica.inMemory(account: "alice", options: options(clock: dead))
        try old.upsertArticles([sampleArticle("a")])
        let comment = try old.addComment(to: "a", body: "written with a dead battery")
        #expect(comment.createdAt.timeIntervalSince1970 * 1000 >= Double(ClockBounds.defaultFloorMillis))
    }

    @Test("orphan comments wait for their article; replies to unknown, later or self parents show at the top level")
    func orphansAndParents() throws {
        let replica = try Replica.inMemory(account: "alice")
        let created = { (parent: String?) in ChangeValue.string(CommentCreation(article: "a", parent: parent).encoded()) }
        try replica.applyBundle(data: try Self.bundle([
            Self.change(1, .comment, "alice:top", ChangeField.commentCreated, created(nil), millis: Self.t0),
            Self.change(2, .comment, "alice:top", ChangeField.commentBody, .string("top")),
            // A reply whose parent was created after it (a forged or clock-skewed parent): top level.
            Self.change(3, .comment, "alice:early", ChangeField.commentCreated, created("alice:late"), millis: Self.t0 + 1),
            Self.change(4, .comment, "alice:early", ChangeField.commentBody, .string("early")),
            Self.change(5, .comment, "alice:late", ChangeField.commentCreated, created(nil), millis: Self.t0 + 2),
            Self.change(6, .comment, "alice:late", ChangeField.commentBody, .string("late")),
            // A reply whose parent is not held: top level until it arrives.
            Self.change(7, .comment, "alice:reply", ChangeField.commentCreated, created("alice:missing"), millis: Self.t0 + 3),
            Self.change(8, .comment, "alice:reply", ChangeField.commentBody, .string("reply")),
        ]))
        // The article is not held yet: nothing shows, and the comments wait.
        #expect(throws: ReaderSyncError.self) { try replica.article("a") }
        try replica.applyBundle(data: try Self.bundle([Self.article(9, "a")]))
        let threads = try replica.comments(on: "a")
        #expect(threads.map(\.comment.id) == ["alice:top", "alice:early", "alice:late", "alice:reply"])
        #expect(threads.allSatisfy { $0.replies.isEmpty })
        // Locally, a comment on an article that does not exist is refused.
        #expect(throws: ReaderSyncError.self) { try replica.addComment(to: "nope", body: "x") }
    }

    // MARK: 12. Files

    @Test("a read-only replica can be read, and an empty file is called empty")
    func readOnlyAndEmptyFiles() throws {
        let dir = TempDir()
        do {
            let replica = try Replica.create(at: dir.path("r.db"), account: "alice")
            try replica.upsertArticles([sampleArticle("a")])
        }
        let readOnly = try Replica.open(at: dir.path("r.db"), options: ReplicaOptions(readOnly: true))
        #expect(readOnly.isReadOnly)
        #expect(try readOnly.status().articles == 1)
        #expect(!(try readOnly.canonicalDump()).isEmpty)
        #expect(throws: ReaderSyncError.self) { try readOnly.markRead("a") }
        FileManager.default.createFile(atPath: dir.path("empty.db"), contents: Data())
        do {
            _ = try Replica.open(at: dir.path("empty.db"))
            Issue.record("an empty file opened as a replica")
        } catch let error as ReaderSyncError {
            #expect(error.message.contains("empty file"), "\(error.message)")
        }
        #expect(try Data(contentsOf: dir.url.appendingPathComponent("empty.db")).isEmpty, "left untouched")
    }
}

@Suite("Knowledge digest")
struct KnowledgeDigestTests {
    @Test("SHA-256 matches the standard's vectors")
    func sha256Vectors() {
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex([UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(SHA256.hex([UInt8](repeating: 0x61, count: 1_000_000))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test("the digest follows the documented text, ignores zero entries and order, and sees every field")
    func digestText() {
        let origin = ReplicaID(string: "0b7e5b4a-6a3d-4a53-9d64-1d0c8f3f7a10") ?? ReplicaID.random()
        var k = Knowledge()
        k.advance(origin: origin, account: "alice", scope: .private, to: 3, incarnation: 0xAB)
        k.advance(origin: origin, account: "alice", scope: .shared, to: 7, incarnation: 1)
        let text = "readersync-knowledge-digest/1\nalice\n"
            + "0b7e5b4a-6a3d-4a53-9d64-1d0c8f3f7a10 alice shared 7 0000000000000001\n"
            + "0b7e5b4a-6a3d-4a53-9d64-1d0c8f3f7a10 alice private 3 00000000000000ab\n"
        #expect(k.digest(account: "alice") == SHA256.hex(Array(text.utf8)))
        var withZero = k
        withZero.advance(origin: ReplicaID.random(), account: "bob", scope: .shared, to: 0, incarnation: 0)
        #expect(withZero.digest(account: "alice") == k.digest(account: "alice"))
        var more = k
        more.advance(origin: origin, account: "alice", scope: .shared, to: 8, incarnation: 1)
        #expect(more.digest(account: "alice") != k.digest(account: "alice"))
        #expect(k.digest(account: "bob") != k.digest(account: "alice"))
    }
}
