import Foundation
import Hummingbird
import HummingbirdTesting
import ReaderSync
import ReaderSyncServer
import Testing

/// Per-account push limits: changes per push, comment length (413), changes per minute (429 with Retry-After,
/// counted in the store), and the client's back-off.
@Suite("Push limits")
struct QuotaTests {
    /// A device of alice holding the server's articles (applied from a pull, so they are not its own changes)
    /// and `comments` comments of its own (two changes each) on a1.
    static func device(of store: any ServerStore, account: ServerAccount, comments: Int, body: String = "comment") async throws -> Replica {
        let device = try Replica.inMemory(account: account.name)
        let page = try await store.pull(knowledge: Knowledge(), for: account, maxChanges: 1_000)
        try await device.applyBundle(data: page.bundle)
        for index in 0..<comments { try await device.addComment(to: "a1", body: "\(body) \(index)") }
        return device
    }

    /// Everything the device holds, as one bundle.
    static func bundle(_ device: Replica) throws -> ByteBuffer {
        ByteBuffer(bytes: try device.exportBundleData(for: Knowledge(), account: device.account).data)
    }

    static func push(_ client: any TestClientProtocol, _ bundle: ByteBuffer, token: String) async throws -> TestResponse {
        try await client.execute(uri: "/v1/sync/push", method: .post,
                                 headers: auth(token, ["Content-Type": SyncHTTP.bundleMediaType]), body: bundle)
    }

    static func commentCount(_ store: any ServerStore) async throws -> Int {
        let object = try JSONSerialization.jsonObject(with: try await store.canonicalDump(account: nil)) as? [String: Any]
        return (object?["comments"] as? [Any])?.count ?? -1
    }

    @Test("A push with more new changes than the per-push limit is refused whole (413); in pages it goes through")
    func perPush() async throws {
        let fixture = try await Fixture()
        let limits = PushLimits(maxChangesPerPush: 10, maxChangesPerMinute: nil, maxCommentLength: nil)
        let device = try await Self.device(of: fixture.store, account: fixture.alice.account, comments: 6)  // 12 changes
        try await fixture.app(ServerConfiguration(pushLimits: limits)).test(.router) { client in
            let response = try await Self.push(client, try Self.bundle(device), token: fixture.alice.token)
            let problem = try expectProblem(response, 413, slug: "too-many-changes")
            #expect(problem.detail == "a push may carry at most 10 new changes, this one carries more; push in pages of at most 10")
            #expect(try await Self.commentCount(fixture.store) == 0)

            let report = try await device.sync(using: routerTransport(client, token: fixture.alice.token),
                                               options: ServerSyncOptions(pushPageChanges: 10))
            #expect(report.pushed.applied == 12)
            #expect(try await Self.commentCount(fixture.store) == 6)
        }
    }

    @Test("A comment longer than the limit refuses the push (413, naming the comment); nothing is applied")
    func commentLength() async throws {
        let fixture = try await Fixture()
        let limits = PushLimits(maxChangesPerPush: nil, maxChangesPerMinute: nil, maxCommentLength: 50)
        let device = try await Self.device(of: fixture.store, account: fixture.alice.account, comments: 1)
        let long = try await device.addComment(to: "a2", body: String(repeating: "x", count: 60))
        try await fixture.app(ServerConfiguration(pushLimits: limits)).test(.router) { client in
            let response = try await Self.push(client, try Self.bundle(device), token: fixture.alice.token)
            let problem = try expectProblem(response, 413, slug: "comment-too-long")
            #expect(problem.comment == long.id)
            #expect(problem.detail == "comment \(long.id) is 60 characters long; this server accepts comments of at most 50 characters")
            #expect(try await Self.commentCount(fixture.store) == 0)
        }
    }

    @Test("The per-minute limit is kept in the store: two servers sharing one file share it, and it frees up as the minute passes")
    func perMinuteAcrossServers() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let db = directory.path("server.db")
        let clock = ManualWallClock(millis: SystemWallClock().nowMillis())
        let first = try SQLiteServerStore(path: db, options: ReplicaOptions(wallClock: clock))
        let alice = try await first.addAccount(name: "alice", role: .reader)
        _ = try await first.importArticles(articles(1))
        let second = try SQLiteServerStore(path: db, options: ReplicaOptions(wallClock: clock))  // shares no memory
        let configuration = ServerConfiguration(pushLimits: PushLimits(maxChangesPerPush: 20, maxChangesPerMinute: 30))
        let firstApp = try buildApplication(configuration: configuration, store: first, logger: quietLogger)
        let secondApp = try buildApplication(configuration: configuration, store: second, logger: quietLogger)
        let ten = try await Self.device(of: first, account: alice.account, comments: 5, body: "ten")
        let alsoTen = try await Self.device(of: first, account: alice.account, comments: 5, body: "also ten")
        let twenty = try await Self.device(of: first, account: alice.account, comments: 10, body: "twenty")

        try await firstApp.test(.router) { a in
            try await secondApp.test(.router) { b in
                #expect(try await Self.push(a, try Self.bundle(ten), token: alice.token).status == .ok)
                #expect(try await Self.push(b, try Self.bundle(alsoTen), token: alice.token).status == .ok)
                for client in [a, b] {
                    let refused = try await Self.push(client, try Self.bundle(twenty), token: alice.token)
                    let problem = try expectProblem(refused, 429, slug: "rate-limited")
                    #expect(problem.detail == "account alice has pushed 20 of its 30 new changes per minute; this push carries more than the 10 left")
                    // The oldest push leaves the window 60 s after it was made; then a whole push (20) fits.
                    #expect(refused.header("Retry-After") == "60")
                }
                clock.advance(by: 59_000)
                #expect(try await Self.push(b, try Self.bundle(twenty), token: alice.token).status == .tooManyRequests)
                clock.advance(by: 1_001)
                #expect(try await Self.push(b, try Self.bundle(twenty), token: alice.token).status == .ok)
            }
        }
        #expect(try await Self.commentCount(first) == 20)
    }

    @Test("Concurrent pushes through two servers sharing one file never take more than the limit together")
    func perMinuteUnderConcurrency() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let db = directory.path("server.db")
        let first = try SQLiteServerStore(path: db)
        let alice = try await first.addAccount(name: "alice", role: .reader)
        _ = try await first.importArticles(articles(1))
        let second = try SQLiteServerStore(path: db)
        let configuration = ServerConfiguration(pushLimits: PushLimits(maxChangesPerPush: 20, maxChangesPerMinute: 30))
        var devices: [Replica] = []
        for index in 0..<8 { devices.append(try await Self.device(of: first, account: alice.account, comments: 5, body: "d\(index)")) }
        let bundles = try devices.map(Self.bundle)
        let firstApp = try buildApplication(configuration: configuration, store: first, logger: quietLogger)
        let secondApp = try buildApplication(configuration: configuration, store: second, logger: quietLogger)
        let statuses = try await firstApp.test(.router) { a in
            try await secondApp.test(.router) { b in
                try await withThrowingTaskGroup(of: (Int, String?).self) { group in
                    for (index, bundle) in bundles.enumerated() {
                        let client = index.isMultiple(of: 2) ? a : b
                        group.addTask {
                            let response = try await Self.push(client, bundle, token: alice.token)
                            return (Int(response.status.code), response.header("Retry-After"))
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
            }
        }
        let accepted = statuses.filter { $0.0 == 200 }.count
        #expect(accepted >= 1 && accepted <= 3, "\(statuses)")
        #expect(statuses.allSatisfy { $0.0 == 200 || ($0.0 == 429 && $0.1 != nil) }, "\(statuses)")
        #expect(try await Self.commentCount(first) == accepted * 5)
    }

    @Test("The client waits as Retry-After says and goes on; with no retries left it stops and says why")
    func clientBacksOff() async throws {
        let configuration = ServerConfiguration(pushLimits: PushLimits(maxChangesPerPush: 20, maxChangesPerMinute: 20))
        // A device with 40 new changes pushes two pages of 20: the second waits for the minute to pass.
        do {
            let clock = ManualWallClock(millis: SystemWallClock().nowMillis())
            let store = try SQLiteServerStore.inMemory(options: ReplicaOptions(wallClock: clock))
            let alice = try await store.addAccount(name: "alice", role: .reader)
            _ = try await store.importArticles(articles(1))
            let device = try await Self.device(of: store, account: alice.account, comments: 20)
            try await withLiveServer(store: store, configuration: configuration) { url in
                let notices = NoticeLog()
                // The wait moves the server's clock instead of sleeping.
                let transport = try URLSessionTransport(url: url, token: alice.token, onRetry: { notices.append($0) },
                                                        sleep: { seconds in clock.advance(by: Int64(seconds * 1000)) })
                let report = try await device.sync(using: transport, options: ServerSyncOptions(pushPageChanges: 20))
                #expect(report.pushed.applied == 40)
                #expect(notices.all == [RetryNotice(status: 429, delay: 60, retry: 1, maxRetries: 3,
                                                    detail: "account alice has pushed its limit of 20 new changes in the last minute")])
                #expect(try await store.canonicalDump(account: "alice") == (try device.canonicalDump()))
            }
        }
        // The clock does not move: every retry is refused again, and the client gives up with the reason.
        do {
            let store = try SQLiteServerStore.inMemory(options: ReplicaOptions(wallClock: ManualWallClock(millis: SystemWallClock().nowMillis())))
            let alice = try await store.addAccount(name: "alice", role: .reader)
            _ = try await store.importArticles(articles(1))
            let device = try await Self.device(of: store, account: alice.account, comments: 15)  // 30 changes
            try await withLiveServer(store: store, configuration: configuration) { url in
                let patient = try URLSessionTransport(url: url, token: alice.token, retry: RetryPolicy(maxRetries: 2),
                                                      sleep: { _ in })
                let gaveUp = await #expect(throws: ReaderSyncError.self) {
                    try await device.sync(using: patient, options: ServerSyncOptions(pushPageChanges: 20))
                }
                #expect(gaveUp?.message == "\(url) still refuses after 2 retries (429): account alice has pushed its limit of 20 new changes in the last minute; try again in 60 s")
                let hasty = try URLSessionTransport(url: url, token: alice.token, retry: RetryPolicy(maxRetries: 3, maxDelay: 30),
                                                    sleep: { _ in Issue.record("waited longer than maxDelay") })
                let tooLong = await #expect(throws: ReaderSyncError.self) {
                    try await device.sync(using: hasty, options: ServerSyncOptions(pushPageChanges: 20))
                }
                #expect(tooLong?.message == "\(url) refused (429): account alice has pushed its limit of 20 new changes in the last minute; it asks to wait 60 s, longer than this client waits (30 s); try again later")
                let never = try URLSessionTransport(url: url, token: alice.token, retry: .never,
                                                    sleep: { _ in Issue.record("waited with RetryPolicy.never") })
                let atOnce = await #expect(throws: ReaderSyncError.self) {
                    try await device.sync(using: never, options: ServerSyncOptions(pushPageChanges: 20))
                }
                #expect(atOnce?.message == "\(url) refused (429): account alice has pushed its limit of 20 new changes in the last minute; try again in 60 s")
            }
            #expect(try await Self.commentCount(store) == 10)  // the first page
        }
    }

    @Test("Two serve processes on one store share the per-minute limit; the readersync client prints one line")
    func twoProcesses() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let db = directory.path("server.db")
        let token: String
        do {
            let store = try SQLiteServerStore(path: db)
            token = try await store.addAccount(name: "alice", role: .reader).token
            _ = try await store.importArticles(articles(1))
        }
        let limits = ["--max-changes-per-push", "20", "--max-changes-per-minute", "30"]
        try await withServerProcess(db: db, arguments: limits) { one in
            try await withServerProcess(db: db, arguments: limits) { two in
                let phone = directory.path("phone.db")
                let laptop = directory.path("laptop.db")
                for (device, server) in [(phone, one), (laptop, two)] {
                    _ = try await ClientProcess.run(["init", "--db", device, "--account", "alice"])
                    let pulled = try await ClientProcess.run(["sync", server.url, "--db", device, "--token", token, "--quiet"])
                    #expect(pulled.status == 0, "\(pulled.stderr)")
                    for index in 0..<10 {
                        _ = try await ClientProcess.run(["comment", "add", "a1", "comment \(index) from \(device)", "--db", device])
                    }
                }
                let first = try await ClientProcess.run(["sync", one.url, "--db", phone, "--token", token, "--quiet"])
                #expect(first.status == 0, "\(first.stderr)")
                // 20 of the 30 are used, through the other process: the laptop's 20 do not fit. The server asks to
                // wait about a minute, which the client (3 retries, up to 2 minutes each) would do: it is told
                // here to wait at most 1 s, so it stops at once with the reason.
                let second = try await ClientProcess.run(["sync", two.url, "--db", laptop, "--token", token],
                                                         environment: ["READERSYNC_MAX_RETRY_WAIT": "1"])
                #expect(second.status == 1)
                let lines = second.stderr.split(separator: "\n")
                #expect(lines.count == 1, "\(second.stderr)")
                #expect(second.stderr.hasPrefix(
                    "readersync: error: \(two.url) refused (429): account alice has pushed 20 of its 30 new changes per minute; this push carries more than the 10 left; it asks to wait "),
                    "\(second.stderr)")
            }
        }
    }

    @Test("readersync sync prints one line for a push over the per-push limit")
    func cliOneLine() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let fixture = try await Fixture()
        let configuration = ServerConfiguration(pushLimits: PushLimits(maxChangesPerPush: 1))
        try await withLiveServer(store: fixture.store, configuration: configuration) { url in
            let device = directory.path("device.db")
            let token = fixture.alice.token
            _ = try await ClientProcess.run(["init", "--db", device, "--account", "alice"])
            let pulled = try await ClientProcess.run(["sync", url, "--db", device, "--token", token, "--quiet"])
            #expect(pulled.status == 0, "\(pulled.stderr)")
            _ = try await ClientProcess.run(["comment", "add", "a1", "hello", "--db", device])
            let refused = try await ClientProcess.run(["sync", url, "--db", device, "--token", token, "--quiet"])
            #expect(refused.status == 1)
            #expect(refused.stderr == "readersync: error: \(url) answered POST /v1/sync/push with 413: a push may carry at most 1 new changes, this one carries more; push in pages of at most 1\n")
        }
    }
}

/// Retry notices, collected from any thread.
final class NoticeLog: @unchecked Sendable {
    private let lock = NSLock()
    private var notices: [RetryNotice] = []
    func append(_ notice: RetryNotice) { lock.withLock { notices.append(notice) } }
    var all: [RetryNotice] { lock.withLock { notices } }
}
