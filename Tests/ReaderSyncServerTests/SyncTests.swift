import Foundation
import Hummingbird
import HummingbirdTesting
import ReaderSync
import ReaderSyncServer
import Synchronization
import Testing

/// Replicas syncing through the server until they converge: the project's signature test, over a real socket
/// with `URLSessionTransport` and over the router.
@Suite("Sync through the server")
struct SyncTests {
    /// Three replicas of two accounts: alice on two devices, bob on one.
    struct Devices {
        let alice1: Replica
        let alice2: Replica
        let bob1: Replica
    }

    /// Syncs every device once; returns how many changes moved (new on either side).
    static func syncAll(_ devices: Devices, alice: any SyncTransport, bob: any SyncTransport) async throws -> Int {
        var moved = 0
        for (replica, transport) in [(devices.alice1, alice), (devices.bob1, bob), (devices.alice2, alice)] {
            let report = try await replica.sync(using: transport)
            moved += report.pushed.applied + report.pulled.applied
            #expect(report.refused.isEmpty)
        }
        return moved
    }

    /// Syncs until a whole round moves nothing.
    static func syncUntilQuiet(_ devices: Devices, alice: any SyncTransport, bob: any SyncTransport) async throws {
        for _ in 0..<6 {
            if try await syncAll(devices, alice: alice, bob: bob) == 0 { break }
        }
        #expect(try await syncAll(devices, alice: alice, bob: bob) == 0, "a round after convergence moves nothing")
    }

    /// The scenario: concurrent reading, commenting, publishing and editing on all devices, synced until quiet.
    static func runScenario(_ devices: Devices, alice: any SyncTransport, bob: any SyncTransport) async throws {
        let (alice1, alice2, bob1) = (devices.alice1, devices.alice2, devices.bob1)
        try await syncUntilQuiet(devices, alice: alice, bob: bob)
        await #expect(try alice1.feed().count == 6)

        // Concurrent activity on every device.
        try await alice1.markRead("a1")
        try await alice1.setProgress("a2", 0.4)
        let aliceComment = try await alice1.addComment(to: "a1", body: "Alice on a1")
        try await alice2.save("a3")
        try await alice2.setProgress("a2", 0.7)
        try await alice2.markRead("a4")
        try await bob1.markRead("a1")
        try await bob1.save("a1")
        try await bob1.upsertArticles([article("bob-news", source: "Bob's Wire")])
        let bobComment = try await bob1.addComment(to: "a2", body: "Bob on a2")
        try await syncUntilQuiet(devices, alice: alice, bob: bob)

        // A second wave: edits by authors on other devices, replies, unread, a correction.
        try await alice2.editComment(aliceComment.id, body: "Alice on a1, edited on her second device")
        try await bob1.addComment(to: "a1", body: "Bob replies", replyTo: aliceComment.id)
        try await bob1.deleteComment(bobComment.id)
        try await alice1.markUnread("a1")
        try await bob1.upsertArticles([article("a5", updated: 60)])
        try await alice1.addComment(to: "bob-news", body: "Alice reads Bob's news")
        try await syncUntilQuiet(devices, alice: alice, bob: bob)
    }

    /// Identical dumps for what each may see; read state never crosses accounts.
    static func expectConverged(_ devices: Devices, store: SQLiteServerStore) async throws {
        let serverAlice = try await store.canonicalDump(account: "alice")
        let serverBob = try await store.canonicalDump(account: "bob")
        await #expect(try devices.alice1.canonicalDump() == serverAlice)
        await #expect(try devices.alice2.canonicalDump() == serverAlice)
        await #expect(try devices.bob1.canonicalDump() == serverBob)

        let alice = try await DumpParts(devices.alice1.canonicalDump(account: nil))
        let bob = try await DumpParts(devices.bob1.canonicalDump(account: nil))
        #expect(alice.articles == bob.articles)
        #expect(alice.comments == bob.comments)
        #expect(alice.readStateAccounts == ["alice"])
        #expect(bob.readStateAccounts == ["bob"])
        #expect(try DumpParts(await store.canonicalDump(account: nil)).readStateAccounts == ["alice", "bob"])

        // Bob sees nothing of alice's reading, and alice nothing of bob's.
        await #expect(try devices.bob1.readState(of: "a2").progress == 0)
        await #expect(try devices.bob1.readState(of: "a3").isSaved == false)
        await #expect(try devices.bob1.readState(of: "a4").isRead == false)
        await #expect(try devices.alice1.readState(of: "a1").isSaved == false)
        await #expect(try devices.alice2.readState(of: "a2").progress == 0.7)
        await #expect(try devices.alice1.readState(of: "a1").isRead == false)

        // What the scenario did, as every replica sees it.
        let comments = try await devices.bob1.comments(on: "a1")
        #expect(comments.count == 1)
        #expect(comments.first?.comment.body == "Alice on a1, edited on her second device")
        #expect(comments.first?.replies.first?.comment.author == "bob")
        await #expect(try devices.alice1.comments(on: "a2").first?.comment.isDeleted == true)
        await #expect(try devices.alice2.article("bob-news").article.source == "Bob's Wire")
        await #expect(try devices.alice1.article("a5").article.body == "Body of a5, version 60")
    }

    @Test("Two accounts, three replicas, a live server and URLSession: identical dumps, private read state")
    func liveConvergence() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let fixture = try await Fixture(articleCount: 6, store: try SQLiteServerStore(path: directory.path("server.db")))
        let devices = Devices(alice1: try Replica.create(at: directory.path("alice1.db"), account: "alice"),
                              alice2: try Replica.create(at: directory.path("alice2.db"), account: "alice"),
                              bob1: try Replica.create(at: directory.path("bob1.db"), account: "bob"))
        try await withLiveServer(store: fixture.store) { url in
            let alice = try URLSessionTransport(url: url, token: fixture.alice.token)
            let bob = try URLSessionTransport(url: url, token: fixture.bob.token)
            #expect(try await alice.account() == RemoteAccount(name: "alice", role: .reader))
            try await Self.runScenario(devices, alice: alice, bob: bob)
        }
        try await Self.expectConverged(devices, store: fixture.store)
    }

    @Test("The same scenario over the router, with an in-memory store")
    func routerConvergence() async throws {
        let fixture = try await Fixture(articleCount: 6)
        let devices = Devices(alice1: try Replica.inMemory(account: "alice"), alice2: try Replica.inMemory(account: "alice"),
                              bob1: try Replica.inMemory(account: "bob"))
        try await fixture.app().test(.router) { client in
            try await Self.runScenario(devices, alice: routerTransport(client, token: fixture.alice.token),
                                       bob: routerTransport(client, token: fixture.bob.token))
        }
        try await Self.expectConverged(devices, store: fixture.store)
    }

    @Test("A retried push (its answer was lost) changes nothing more")
    func retriedPush() async throws {
        let fixture = try await Fixture()
        let alice = try Replica.inMemory(account: "alice")
        try await fixture.app().test(.router) { client in
            let transport = routerTransport(client, token: fixture.alice.token)
            _ = try await alice.sync(using: transport)
            try await alice.markRead("a1")
            try await alice.save("a2")
            try await alice.addComment(to: "a3", body: "once")
            let bundle = try await alice.exportBundleData(for: try await transport.knowledge(), account: "alice").data

            let first = try await transport.push(bundle)
            #expect(first.applied == 4)
            let dump = try await fixture.store.canonicalDump(account: nil)
            let second = try await transport.push(bundle)
            #expect(second.applied == 0)
            #expect(second.duplicates == 4)
            #expect(second.knowledge == first.knowledge)
            #expect(try await fixture.store.canonicalDump(account: nil) == dump)
            #expect(try await fixture.store.canonicalDump(account: "alice") == (try alice.canonicalDump()))

            let report = try await alice.sync(using: transport)
            #expect(report.pushed.changes == 0)
            #expect(report.pulled.applied == 0)
        }
    }

    @Test("A pull broken mid-way resumes from the last applied page, without duplicates")
    func brokenPullResumes() async throws {
        let fixture = try await Fixture(articleCount: 30)
        let bob = try Replica.inMemory(account: "bob")
        let alice = try Replica.inMemory(account: "alice")
        try await fixture.app().test(.router) { client in
            let bobTransport = routerTransport(client, token: fixture.bob.token)
            _ = try await bob.sync(using: bobTransport)
            for index in 1...5 { try await bob.addComment(to: "a\(index)", body: "Bob \(index)") }
            try await bob.markRead("a1")
            _ = try await bob.sync(using: bobTransport)
            let visible = 30 + 5 * 2  // articles, and bob's comments (created + body); not bob's read state

            let transport = routerTransport(client, token: fixture.alice.token)
            // Page 1 is fetched and lost (the connection dropped before it was applied).
            let lost = try await transport.pull(knowledge: try alice.knowledge(), maxChanges: 7)
            #expect(!lost.isComplete)

            // A sync that dies after two pages keeps what it applied, consistently.
            let flaky = FlakyTransport(transport, failAfterPulls: 2)
            await #expect(throws: ReaderSyncError.self) {
                _ = try await alice.sync(using: flaky, options: ServerSyncOptions(pullPageChanges: 7))
            }
            await #expect(try alice.status().logEntries == 14)

            // The lost page arrives late: it holds nothing new.
            let late = try await alice.applyBundle(data: lost.bundle)
            #expect(late.applied == 0)
            #expect(late.duplicates == 7)

            // Syncing again continues where it stopped.
            let report = try await alice.sync(using: transport, options: ServerSyncOptions(pullPageChanges: 7))
            #expect(report.pulled.applied == visible - 14)
            #expect(report.pulled.duplicates == 0)
            #expect(report.pulled.pages == 4)
            await #expect(try alice.status().logEntries == visible)
            await #expect(try alice.canonicalDump() == (try await fixture.store.canonicalDump(account: "alice")))
        }
    }

    @Test("Pull pages say how many changes remain: the progress fraction rises to 1, and the CLI shows it")
    func pullProgressFraction() async throws {
        let fixture = try await Fixture(articleCount: 30)
        let alice = try Replica.inMemory(account: "alice")
        try await fixture.app().test(.router) { client in
            let transport = routerTransport(client, token: fixture.alice.token)
            let first = try await transport.pull(knowledge: Knowledge(), maxChanges: 7)
            #expect(first.remainingChanges == 23 && !first.isComplete)

            let steps = Mutex<[ServerSyncProgress]>([])
            _ = try await alice.sync(using: transport, options: ServerSyncOptions(pullPageChanges: 7)) { step in
                steps.withLock { $0.append(step) }
            }
            let pulls = steps.withLock { $0 }.filter { $0.phase == .pulling }
            #expect(pulls.map(\.changes) == [7, 14, 21, 28, 30])
            #expect(pulls.map(\.remainingChanges) == [23, 16, 9, 2, 0])
            let fractions = pulls.compactMap(\.fractionCompleted)
            #expect(fractions.count == 5 && fractions.last == 1)
            #expect(zip(fractions, fractions.dropFirst()).allSatisfy { $0 < $1 })
            #expect(abs((fractions.first ?? 0) - 7.0 / 30.0) < 1e-9)

            // Nothing left: the last page says 0 and is complete.
            let last = try await transport.pull(knowledge: try alice.knowledge(), maxChanges: 7)
            #expect(last.isComplete && last.remainingChanges == 0)
        }
    }

    @Test("A scheduler made for a server shows each page's progress and the last sync's report in its status")
    func schedulerShowsProgress() async throws {
        let fixture = try await Fixture(articleCount: 30)
        let alice = try Replica.inMemory(account: "alice")
        try await fixture.app().test(.router) { client in
            let scheduler = SyncScheduler(replica: alice, transport: routerTransport(client, token: fixture.alice.token),
                                          options: ServerSyncOptions(pullPageChanges: 7), clock: ContinuousClock())
            var updates = await scheduler.statusUpdates().makeAsyncIterator()
            await scheduler.start()
            var seen: [SyncSchedulerStatus] = []
            while let status = await updates.next() {
                seen.append(status)
                if status.state == .idle && status.lastReport != nil { break }
            }
            await scheduler.stop()
            let pulling = seen.compactMap(\.progress).filter { $0.phase == .pulling }
            #expect(pulling.map(\.changes) == [7, 14, 21, 28, 30])
            #expect(pulling.compactMap(\.fractionCompleted).last == 1)
            let done = try #require(seen.last)
            #expect(done.progress == nil)
            #expect(done.lastReport?.pulled.changes == 30 && done.lastReport?.pulled.pages == 5)
            await #expect(try alice.status().articles == 30)
        }
    }

    @Test("Pushes are paged by change count and by size")
    func pagedPush() async throws {
        let fixture = try await Fixture(articleCount: 25)
        let alice = try Replica.inMemory(account: "alice")
        let other = try Replica.inMemory(account: "alice")
        try await fixture.app().test(.router) { client in
            let transport = routerTransport(client, token: fixture.alice.token)
            _ = try await alice.sync(using: transport)
            for index in 1...25 { try await alice.markRead("a\(index)") }
            let byCount = try await alice.sync(using: transport, options: ServerSyncOptions(pushPageChanges: 10))
            #expect(byCount.pushed.pages == 3)
            #expect(byCount.pushed.applied == 25)

            for index in 1...6 { try await alice.save("a\(index)") }
            let steps = ProgressLog()
            let bySize = try await alice.sync(using: transport, options: ServerSyncOptions(maxPushBytes: 1),
                                              progress: { steps.append($0) })
            #expect(bySize.pushed.pages == 6)
            #expect(bySize.pushed.applied == 6)
            #expect(steps.all.filter { $0.phase == .pushing }.map(\.changes) == [1, 2, 3, 4, 5, 6])
            #expect(steps.all.last?.isComplete == true)

            _ = try await other.sync(using: transport)
            await #expect(try other.canonicalDump() == (try alice.canonicalDump()))
        }
    }

    @Test("A reader's article changes are refused, reported and kept on the device; the rest is applied")
    func readerArticlesRefused() async throws {
        let fixture = try await Fixture()
        let alice1 = try Replica.inMemory(account: "alice")
        let alice2 = try Replica.inMemory(account: "alice")
        try await fixture.app().test(.router) { client in
            let transport = routerTransport(client, token: fixture.alice.token)
            _ = try await alice1.sync(using: transport)
            try await alice1.upsertArticles([article("alice-own"), article("a1", updated: 99)])
            try await alice1.addComment(to: "a1", body: "a comment")
            let report = try await alice1.sync(using: transport)
            #expect(report.refused.map(\.key).sorted() == ["a1", "alice-own"])
            #expect(report.refused.allSatisfy { $0.entity == .article && $0.field == ChangeField.articleContent })
            #expect(report.pushed.applied == 2)

            await #expect(try alice1.article("alice-own").article.id == "alice-own")
            let server = String(decoding: try await fixture.store.canonicalDump(account: nil), as: UTF8.self)
            #expect(!server.contains("alice-own"))
            #expect(!server.contains("version 99"))

            let again = try await alice1.sync(using: transport)
            #expect(again.pushed.changes == 0)
            #expect(again.refused.isEmpty)

            _ = try await alice2.sync(using: transport)
            await #expect(try alice2.comments(on: "a1").count == 1)
            #expect(throws: ReaderSyncError.self) { try alice2.article("alice-own") }
        }
    }

    @Test("Changes relayed from another account's replica are ignored until their author syncs")
    func relayedChangesIgnored() async throws {
        let fixture = try await Fixture()
        let alice = try Replica.inMemory(account: "alice")
        let bob = try Replica.inMemory(account: "bob")
        let late = try Replica.inMemory(account: "alice")
        try await fixture.app().test(.router) { client in
            let aliceTransport = routerTransport(client, token: fixture.alice.token)
            _ = try await alice.sync(using: aliceTransport)
            _ = try await bob.sync(using: routerTransport(client, token: fixture.bob.token))
            try await bob.addComment(to: "a1", body: "from bob, carried by alice")
            try await bob.markRead("a2")
            _ = try await alice.sync(with: bob)  // replica to replica: shared changes only
            await #expect(try alice.comments(on: "a1").count == 1)

            // A bundle that relays bob's changes: the server ignores them and does not claim to hold them.
            let knowledge = try await aliceTransport.knowledge()
            let relay = try await alice.exportBundleData(for: knowledge, account: "alice").data
            let answer = try await aliceTransport.push(relay)
            #expect(answer.ignored == 2)
            #expect(answer.applied == 0)
            #expect(answer.knowledge.seq(origin: bob.replicaID, account: bob.account, scope: .shared) == 0)
            // The sync engine does not even send them.
            #expect(try await alice.sync(using: aliceTransport).pushed.changes == 0)

            _ = try await late.sync(using: aliceTransport)
            await #expect(try late.comments(on: "a1").isEmpty)
            _ = try await bob.sync(using: routerTransport(client, token: fixture.bob.token))
            _ = try await late.sync(using: aliceTransport)
            await #expect(try late.comments(on: "a1").first?.comment.author == "bob")
            await #expect(try late.readState(of: "a2").isRead == false)
        }
    }

    @Test("A token of another account is refused by the client before anything moves")
    func wrongAccount() async throws {
        let fixture = try await Fixture()
        let alice = try Replica.inMemory(account: "alice")
        try await fixture.app().test(.router) { client in
            await #expect(throws: ReaderSyncError.self) {
                _ = try await alice.sync(using: routerTransport(client, token: fixture.bob.token))
            }
            await #expect(throws: ReaderSyncError.server(status: 401,
                "test-router rejected the token: it is unknown or revoked (401: the token is unknown or revoked)")) {
                _ = try await alice.sync(using: routerTransport(client, token: "rst_wrong"))
            }
        }
        await #expect(try alice.feed().isEmpty)
    }
}

/// Collects progress callbacks.
final class ProgressLog: @unchecked Sendable {
    private let lock = NSLock()
    private var steps: [ServerSyncProgress] = []

    func append(_ step: ServerSyncProgress) { lock.withLock { steps.append(step) } }
    var all: [ServerSyncProgress] { lock.withLock { steps } }
}
