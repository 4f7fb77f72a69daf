import Foundation
import Hummingbird
import HummingbirdTesting
import ReaderSync
import ReaderSyncServer
import Synchronization
import Testing

/// Getting evicted bodies back from the server (`POST /v1/articles/bodies`, issue 11): the route, its limits and
/// problems, the store's answer cap, and a device that evicted a body fetching it back, over the real transport
/// and from a hostile one.
@Suite("Fetching bodies from the server")
struct BodyFetchTests {
    /// SHA-256 of `Body of a1, version 0` and `Body of a2, version 0` (the fixture's bodies), from `sha256sum`.
    static let a1Digest = "65cfea6028a935b635c6fb45018ffb0690f0d9dfcae16eaf6368da83ad1242c7"
    static let a2Digest = "2dff6b7a4a88cff26ee486e9e54c00f777fe4dc34f298baaaaa313b88203df25"

    static func post(_ client: any TestClientProtocol, token: String?, _ body: String,
                     contentType: String = SyncHTTP.jsonMediaType) async throws -> TestResponse {
        let extra = ["Content-Type": contentType]
        return try await client.execute(uri: "/v1/articles/bodies", method: .post,
                                        headers: token.map { auth($0, extra) } ?? fields(extra),
                                        body: ByteBuffer(string: body))
    }

    /// What fetching must not touch on a device: its change log, knowledge and clock.
    static func logState(_ replica: Replica) throws -> (entries: Int, knowledge: Knowledge, clock: HLCTimestamp) {
        let status = try replica.status()
        return (status.logEntries, try replica.knowledge(), status.clock)
    }

    // MARK: - The route

    @Test("No token or an unknown one: 401 problem with a Bearer challenge", arguments: ["none", "unknown"])
    func unauthenticated(_ kind: String) async throws {
        let fixture = try await Fixture()
        try await fixture.app().test(.router) { client in
            let response = try await Self.post(client, token: kind == "none" ? nil : "rst_not-a-token", #"{"ids":["a1"]}"#)
            try expectProblem(response, 401, slug: "unauthorized")
            #expect(response.header("WWW-Authenticate")?.hasPrefix("Bearer") == true)
            #expect(!String(decoding: response.data, as: UTF8.self).contains("Body of"))
        }
    }

    @Test("Any account gets the bodies it asks for with their SHA-256; unknown ids are missing; repeats answered once")
    func bodiesAndMissing() async throws {
        let fixture = try await Fixture()
        try await fixture.app().test(.router) { client in
            // alice is a reader: articles are shared, so she may have every body.
            let response = try await Self.post(client, token: fixture.alice.token,
                                               #"{"ids":["a2","nope","a1","a2","other"],"extra":true}"#)
            #expect(response.status == .ok)
            #expect(SyncHTTP.mediaType(response.header("Content-Type")) == SyncHTTP.jsonMediaType)
            let answer = try JSONDecoder().decode(ArticleBodiesAnswer.self, from: response.data)
            #expect(answer.bodies == [
                ArticleBody(id: "a2", sha256: Self.a2Digest, body: "Body of a2, version 0"),
                ArticleBody(id: "a1", sha256: Self.a1Digest, body: "Body of a1, version 0"),
            ])
            #expect(answer.missing == ["nope", "other"])
            #expect(answer.truncated.isEmpty)
            let json = try #require(try JSONSerialization.jsonObject(with: response.data) as? [String: Any])
            #expect(Set(json.keys) == ["bodies", "missing", "truncated"])
            let first = try #require((json["bodies"] as? [[String: Any]])?.first)
            #expect(Set(first.keys) == ["id", "sha256", "body"])
        }
    }

    @Test("Malformed JSON, no ids, too many ids, invalid ids: 400 problem naming what is wrong", arguments: [
        ("{", "not a bodies request"), ("[]", "not a bodies request"), ("null", "not a bodies request"), ("{}", "ids"),
        (#"{"ids": null}"#, "ids"), (#"{"ids": "a1"}"#, "ids"), (#"{"ids": [1]}"#, "ids[0]"),
        (#"{"ids": []}"#, "ids is empty"),
        ("{\"ids\": [" + (0...200).map { "\"a\($0)\"" }.joined(separator: ",") + "]}", "201 ids"),
        (#"{"ids": ["a1", ""]}"#, "ids[1]"), (#"{"ids": ["   "]}"#, "white space"),
        (#"{"ids": ["a\u0001b"]}"#, "U+0001"), (#"{"ids": ["a1", "a\u0085"]}"#, "U+0085"),
        ("{\"ids\": [\"" + String(repeating: "é", count: 257) + "\"]}", "514 bytes"),
    ])
    func badRequests(_ body: String, _ named: String) async throws {
        let fixture = try await Fixture()
        try await fixture.app().test(.router) { client in
            let response = try await Self.post(client, token: fixture.alice.token, body)
            let problem = try expectProblem(response, 400, slug: "invalid-request")
            #expect(problem.detail.contains(named), "\(problem.detail)")
        }
    }

    @Test("200 ids, each at the 512-byte limit, are accepted")
    func atTheLimits() async throws {
        let fixture = try await Fixture()
        try await fixture.app().test(.router) { client in
            let ids = (0..<200).map { String(repeating: "x", count: 512 - 3) + String(format: "%03d", $0) }
            let body = String(decoding: try JSONEncoder().encode(ArticleBodiesRequest(ids: ids)), as: UTF8.self)
            let response = try await Self.post(client, token: fixture.alice.token, body)
            #expect(response.status == .ok)
            let answer = try JSONDecoder().decode(ArticleBodiesAnswer.self, from: response.data)
            #expect(answer.missing == ids && answer.bodies.isEmpty)
        }
    }

    @Test("Wrong media type: 415; a body over 1 MiB: 413; GET: 405 with Allow; all problems")
    func protocolErrors() async throws {
        let fixture = try await Fixture()
        try await fixture.app().test(.router) { client in
            let text = try await Self.post(client, token: fixture.alice.token, #"{"ids":["a1"]}"#, contentType: "text/plain")
            try expectProblem(text, 415, slug: "unsupported-media-type")
            let big = #"{"ids":[""# + String(repeating: "x", count: (1 << 20) + 10) + #""]}"#
            let tooLarge = try await Self.post(client, token: fixture.alice.token, big)
            let problem = try expectProblem(tooLarge, 413, slug: "content-too-large")
            #expect(problem.detail.contains("\(1 << 20) bytes"))
            let get = try await client.execute(uri: "/v1/articles/bodies", method: .get, headers: auth(fixture.alice.token))
            try expectProblem(get, 405, slug: "method-not-allowed")
            #expect(get.header("Allow") == "POST")
        }
    }

    // MARK: - The store's cap

    @Test("Past the byte cap the ids left are truncated, unread; at least one body always comes")
    func storeCap() async throws {
        let fixture = try await Fixture(articleCount: 5)
        let ids = ["a1", "nope", "a2", "a3", "a1", "a4", "a5"]
        let bodyBytes = "Body of a1, version 0".utf8.count
        let capped = try await fixture.store.articleBodies(ids, maxBytes: 2 * bodyBytes)
        #expect(capped.bodies.map(\.id) == ["a1", "a2"])
        #expect(capped.missing == ["nope"])
        #expect(capped.truncated == ["a3", "a4", "a5"])
        let tiny = try await fixture.store.articleBodies(ids, maxBytes: 0)
        #expect(tiny.bodies.map(\.id) == ["a1"] && tiny.missing.isEmpty)
        #expect(tiny.truncated == ["nope", "a2", "a3", "a4", "a5"])
        let whole = try await fixture.store.articleBodies(ids, maxBytes: 8 << 20)
        #expect(whole.bodies.map(\.id) == ["a1", "a2", "a3", "a4", "a5"] && whole.truncated.isEmpty)
        #expect(whole.bodies.allSatisfy { $0 == ArticleBody(id: $0.id, body: $0.body) })
    }

    // MARK: - A device fetching its bodies back

    @Test("End to end over a socket: an evicted body comes back, and the log, knowledge and clock stay")
    func endToEnd() async throws {
        let fixture = try await Fixture()
        let device = try Replica.inMemory(account: "alice")
        let store = fixture.store
        let token = fixture.alice.token
        try await withLiveServer(store: store) { url in
            let transport = try URLSessionTransport(url: url, token: token)
            _ = try await device.sync(using: transport)
            let original = try await device.article("a1").article.body
            #expect(original == "Body of a1, version 0")
            try await device.markRead("a1")
            _ = try await device.sync(using: transport)
            let before = try Self.logState(device)
            await #expect(try device.evictBody(of: "a1"))
            await #expect(try device.bodyState(of: "a1") == .evicted)
            await #expect(try device.articlesWithoutBody() == ["a1"])

            let report = try await device.fetchBodies(using: transport)
            #expect(report.filled == 1 && report.rejected == 0 && report.missing == 0 && report.rejectedIDs.isEmpty)
            await #expect(try device.bodyState(of: "a1") == .held)
            await #expect(try device.article("a1").article.body == original)
            await #expect(try device.articlesWithoutBody().isEmpty)
            let after = try Self.logState(device)
            #expect(after.entries == before.entries && after.knowledge == before.knowledge && after.clock == before.clock)

            // By id: held bodies and unknown ids are not asked for; nothing left to do is no request at all.
            await #expect(try device.evictBody(of: "a2"))
            let byID = try await device.fetchBodies(["a2", "a1", "unknown", "a2"], using: transport)
            #expect(byID.filled == 1 && byID.rejected == 0 && byID.missing == 0)
            await #expect(try device.bodyState(of: "a2") == .held)
            #expect(try await device.fetchBodies(using: transport) == BodyFillReport())
            // Nothing was recorded: a sync afterwards has nothing to move.
            #expect(try await device.sync(using: transport).wasUpToDate)
        }
    }

    /// Counts the ids of each bodies request.
    final class Requests: Sendable {
        let sizes = Mutex<[Int]>([])
    }

    @Test("Every body lacking comes back in requests of at most 200 ids")
    func chunks() async throws {
        let fixture = try await Fixture(articleCount: 450)
        let device = try Replica.inMemory(account: "alice")
        let requests = Requests()
        try await fixture.app().test(.router) { client in
            let router = routerTransport(client, token: fixture.alice.token)
            _ = try await device.sync(using: router)
            for i in 1...450 {
                try await device.markRead("a\(i)")
                await #expect(try device.evictBody(of: "a\(i)"))
            }
            let before = try Self.logState(device)
            let counting = HTTPSyncTransport(serverDescription: "test-router", token: fixture.alice.token) { request in
                if let body = request.body, let ask = try? JSONDecoder().decode(ArticleBodiesRequest.self, from: body) {
                    requests.sizes.withLock { $0.append(ask.ids.count) }
                }
                return try await Self.send(request, through: client)
            }
            let report = try await device.fetchBodies(using: counting)
            #expect(report.filled == 450 && report.rejected == 0 && report.missing == 0)
            #expect(requests.sizes.withLock { $0 } == [200, 200, 50])
            await #expect(try device.articlesWithoutBody().isEmpty)
            await #expect(try device.article("a321").article.body == "Body of a321, version 0")
            let after = try Self.logState(device)
            #expect(after.entries == before.entries && after.knowledge == before.knowledge)
        }
    }

    /// One request through the router test client.
    static func send(_ request: SyncHTTPRequest, through client: any TestClientProtocol) async throws -> SyncHTTPResponse {
        let response = try await client.executeRequest(
            uri: "/" + request.path, method: request.method == "POST" ? .post : .get,
            headers: fields(request.headers), body: request.body.map { ByteBuffer(bytes: $0) })
        var headers: [String: String] = [:]
        for field in response.headers { headers[field.name.canonicalName] = field.value }
        return SyncHTTPResponse(status: response.status.code, headers: headers, body: response.data)
    }

    /// Answers from the store with a tiny byte cap (one body per answer), leaving an id out as missing.
    struct CappedTransport: SyncTransport {
        let store: SQLiteServerStore
        let hide: String

        func account() async throws -> RemoteAccount { throw ReaderSyncError.transport("not used") }
        func knowledge() async throws -> Knowledge { throw ReaderSyncError.transport("not used") }
        func push(_ bundle: Data) async throws -> PushResponse { throw ReaderSyncError.transport("not used") }
        func pull(knowledge: Knowledge, maxChanges: Int?) async throws -> PullPage { throw ReaderSyncError.transport("not used") }
        func fetchBodies(_ ids: [String]) async throws -> ArticleBodiesAnswer {
            var answer = try await store.articleBodies(ids.filter { $0 != hide }, maxBytes: 1)
            if ids.contains(hide) { answer.missing.append(hide) }
            return answer
        }
    }

    @Test("A truncated answer is followed up until every id is answered; missing ones are counted")
    func followsTruncation() async throws {
        let fixture = try await Fixture(articleCount: 4)
        let device = try Replica.inMemory(account: "alice")
        try await fixture.app().test(.router) { client in
            _ = try await device.sync(using: routerTransport(client, token: fixture.alice.token))
        }
        for id in ["a1", "a2", "a3", "a4"] {
            try await device.markRead(id)
            await #expect(try device.evictBody(of: id))
        }
        let report = try await device.fetchBodies(using: CappedTransport(store: fixture.store, hide: "a3"))
        #expect(report.filled == 3 && report.missing == 1 && report.rejected == 0)
        await #expect(try device.articlesWithoutBody() == ["a3"])
    }

    /// A hostile server: a wrong body for every id asked, with the digest of the real one (a lie), plus a body
    /// nobody asked for.
    struct HostileTransport: SyncTransport {
        let realDigests: [String: String]

        func account() async throws -> RemoteAccount { throw ReaderSyncError.transport("not used") }
        func knowledge() async throws -> Knowledge { throw ReaderSyncError.transport("not used") }
        func push(_ bundle: Data) async throws -> PushResponse { throw ReaderSyncError.transport("not used") }
        func pull(knowledge: Knowledge, maxChanges: Int?) async throws -> PullPage { throw ReaderSyncError.transport("not used") }
        func fetchBodies(_ ids: [String]) async throws -> ArticleBodiesAnswer {
            ArticleBodiesAnswer(bodies: ids.map { id in
                ArticleBody(id: id, sha256: realDigests[id] ?? String(repeating: "0", count: 64), body: "Forged text of \(id)")
            })
        }
    }

    @Test("A forged body with a lying sha256 is rejected and counted; nothing is written")
    func hostileServer() async throws {
        let fixture = try await Fixture()
        let device = try Replica.inMemory(account: "alice")
        try await fixture.app().test(.router) { client in
            _ = try await device.sync(using: routerTransport(client, token: fixture.alice.token))
        }
        try await device.markRead("a1")
        await #expect(try device.evictBody(of: "a1"))
        let before = try Self.logState(device)
        let dumpBefore = try await device.canonicalDump()

        let report = try await device.fetchBodies(using: HostileTransport(realDigests: ["a1": Self.a1Digest]))
        #expect(report.rejected == 1 && report.filled == 0 && report.missing == 0)
        #expect(report.rejectedIDs == ["a1"])
        await #expect(try device.bodyState(of: "a1") == .evicted)
        await #expect(try device.article("a1").article.body == "")
        let after = try Self.logState(device)
        #expect(after.entries == before.entries && after.knowledge == before.knowledge && after.clock == before.clock)
        await #expect(try device.canonicalDump() == dumpBefore)
    }

    /// A stray body (for an id not asked) is not stored even when it is genuine, and counts as rejected.
    struct StrayTransport: SyncTransport {
        func account() async throws -> RemoteAccount { throw ReaderSyncError.transport("not used") }
        func knowledge() async throws -> Knowledge { throw ReaderSyncError.transport("not used") }
        func push(_ bundle: Data) async throws -> PushResponse { throw ReaderSyncError.transport("not used") }
        func pull(knowledge: Knowledge, maxChanges: Int?) async throws -> PullPage { throw ReaderSyncError.transport("not used") }
        func fetchBodies(_ ids: [String]) async throws -> ArticleBodiesAnswer {
            ArticleBodiesAnswer(bodies: [ArticleBody(id: "a2", body: "Body of a2, version 0")], missing: ids)
        }
    }

    @Test("Bodies not asked for are refused; a transport without the route says so")
    func strayAndUnsupported() async throws {
        let fixture = try await Fixture()
        let device = try Replica.inMemory(account: "alice")
        try await fixture.app().test(.router) { client in
            _ = try await device.sync(using: routerTransport(client, token: fixture.alice.token))
            for id in ["a1", "a2"] {
                try await device.markRead(id)
                await #expect(try device.evictBody(of: id))
            }
            let stray = try await device.fetchBodies(["a1"], using: StrayTransport())
            #expect(stray.filled == 0 && stray.rejected == 1 && stray.missing == 1)
            await #expect(try device.bodyState(of: "a2") == .evicted)

            // FlakyTransport implements only the sync exchanges: the default fetchBodies throws.
            let flaky = FlakyTransport(routerTransport(client, token: fixture.alice.token), failAfterPulls: 10)
            await #expect(throws: ReaderSyncError.transport("this transport cannot fetch article bodies")) {
                try await device.fetchBodies(using: flaky)
            }
            await #expect(try device.articlesWithoutBody() == ["a1", "a2"])
        }
    }
}
