import Foundation
import Hummingbird
import HummingbirdTesting
import ReaderSync
import ReaderSyncServer
import Testing

/// Each route through the router, and each kind of bad input: a 4xx problem, the store unchanged.
@Suite("Routes")
struct RouteTests {
    // MARK: - Happy paths

    @Test("GET /v1/health needs no token")
    func health() async throws {
        let fixture = try await Fixture()
        try await fixture.app().test(.router) { client in
            let response = try await client.execute(uri: "/v1/health", method: .get)
            #expect(response.status == .ok)
            #expect(String(decoding: response.data, as: UTF8.self) == #"{"status":"ok"}"#)
        }
    }

    @Test("GET /v1/account names the token's account and role")
    func account() async throws {
        let fixture = try await Fixture()
        try await fixture.app().test(.router) { client in
            let response = try await client.execute(uri: "/v1/account", method: .get, headers: auth(fixture.bob.token))
            #expect(response.status == .ok)
            let account = try JSONDecoder().decode(RemoteAccount.self, from: response.data)
            #expect(account == RemoteAccount(name: "bob", role: .editor))
        }
    }

    @Test("GET /v1/sync/knowledge shows shared entries and only the caller's own private ones")
    func knowledge() async throws {
        let fixture = try await Fixture()
        let alice = try Replica.inMemory(account: "alice")
        let bob = try Replica.inMemory(account: "bob")
        try await fixture.app().test(.router) { client in
            _ = try await alice.sync(using: routerTransport(client, token: fixture.alice.token))
            _ = try await bob.sync(using: routerTransport(client, token: fixture.bob.token))
            try await alice.markRead("a1")
            try await bob.markRead("a2")
            _ = try await alice.sync(using: routerTransport(client, token: fixture.alice.token))
            _ = try await bob.sync(using: routerTransport(client, token: fixture.bob.token))

            let response = try await client.execute(uri: "/v1/sync/knowledge", method: .get, headers: auth(fixture.alice.token))
            #expect(response.status == .ok)
            #expect(SyncHTTP.mediaType(response.header("Content-Type")) == SyncHTTP.jsonMediaType)
            let knowledge = try Knowledge.decode(json: response.data)
            #expect(knowledge.seq(origin: alice.replicaID, account: alice.account, scope: .private) == 1)
            #expect(knowledge.seq(origin: bob.replicaID, account: bob.account, scope: .private) == 0)
            #expect(knowledge.seq(origin: fixture.store.replica.replicaID, account: SQLiteServerStore.serverAccountName, scope: .shared) == 3)
            #expect(String(decoding: response.data, as: UTF8.self).contains(#""format":"readersync-knowledge/2""#))
        }
    }

    @Test("POST /v1/sync/push applies a bundle and answers with knowledge and counts")
    func push() async throws {
        let fixture = try await Fixture()
        let alice = try Replica.inMemory(account: "alice")
        try await alice.upsertArticles(articles(3))
        try await alice.markRead("a1")
        try await alice.addComment(to: "a1", body: "first")
        let bundle = try await alice.exportBundleData(for: Knowledge(), account: "alice").data
        try await fixture.app().test(.router) { client in
            let response = try await client.execute(
                uri: "/v1/sync/push", method: .post,
                headers: auth(fixture.alice.token, ["Content-Type": SyncHTTP.bundleMediaType]), body: ByteBuffer(bytes: bundle))
            #expect(response.status == .ok)
            let answer = try JSONDecoder().decode(PushResponse.self, from: response.data)
            #expect(answer.received == 6)
            #expect(answer.applied == 3)
            #expect(answer.refused.count == 3)
            #expect(answer.refused.allSatisfy { $0.entity == .article && $0.reason.contains("reader") })
            // The device made changes 1...6 (its own knowledge covers both scopes to 6); the server now holds them
            // all, the refused articles included, so they are not pushed again.
            #expect(answer.knowledge.seq(origin: alice.replicaID, account: alice.account, scope: .shared) == 6)
            #expect(answer.knowledge.seq(origin: alice.replicaID, account: alice.account, scope: .private) == 6)
            let json = try #require(try JSONSerialization.jsonObject(with: response.data) as? [String: Any])
            let refused = try #require((json["refused"] as? [[String: Any]])?.first)
            #expect(Set(refused.keys) == ["origin", "seq", "entity", "key", "field", "reason"])
            #expect(refused["entity"] as? String == "article")
        }
    }

    @Test("POST /v1/sync/pull pages with ReaderSync-Complete")
    func pull() async throws {
        let fixture = try await Fixture(articleCount: 5)
        try await fixture.app().test(.router) { client in
            let body = try JSONEncoder().encode(PullRequestBody(knowledge: Knowledge(), maxChanges: 2))
            let first = try await client.execute(
                uri: "/v1/sync/pull", method: .post,
                headers: auth(fixture.alice.token, ["Content-Type": "application/json; charset=utf-8"]), body: ByteBuffer(bytes: body))
            #expect(first.status == .ok)
            #expect(SyncHTTP.mediaType(first.header("Content-Type")) == SyncHTTP.bundleMediaType)
            #expect(first.header("ReaderSync-Complete") == "false")
            let device = try Replica.inMemory(account: "alice")
            await #expect(try device.applyBundle(data: first.data).applied == 2)

            let rest = try await JSONEncoder().encode(PullRequestBody(knowledge: try device.knowledge()))
            let second = try await client.execute(
                uri: "/v1/sync/pull", method: .post,
                headers: auth(fixture.alice.token, ["Content-Type": "application/json"]), body: ByteBuffer(bytes: rest))
            #expect(second.header("ReaderSync-Complete") == "true")
            await #expect(try device.applyBundle(data: second.data).applied == 3)
            await #expect(try device.canonicalDump() == (try await fixture.store.canonicalDump(account: "alice")))
        }
    }

    // MARK: - 401

    @Test("No token, a malformed header, an unknown or a revoked token: 401 problem", arguments: [
        "none", "basic", "unknown", "revoked",
    ])
    func unauthorized(_ kind: String) async throws {
        let fixture = try await Fixture()
        let headers: HTTPFields
        switch kind {
        case "none": headers = [:]
        case "basic": headers = fields(["Authorization": "Basic YWxpY2U6c2VjcmV0"])
        case "unknown": headers = auth("rst_not-a-token")
        default:
            _ = try await fixture.store.revokeAccount(name: "alice")
            headers = auth(fixture.alice.token)
        }
        let before = try await fixture.store.canonicalDump(account: nil)
        try await fixture.app().test(.router) { client in
            for (uri, method) in [("/v1/account", HTTPRequest.Method.get), ("/v1/sync/knowledge", .get),
                                  ("/v1/sync/push", .post), ("/v1/sync/pull", .post)] {
                let response = try await client.execute(uri: uri, method: method, headers: headers, body: ByteBuffer(bytes: [1, 2, 3]))
                try expectProblem(response, 401, slug: "unauthorized")
                #expect(response.header("WWW-Authenticate")?.hasPrefix("Bearer") == true)
            }
        }
        #expect(try await fixture.store.canonicalDump(account: nil) == before)
    }

    @Test("A revoked token stops working at once, without restarting the server")
    func revocationIsImmediate() async throws {
        let fixture = try await Fixture()
        try await fixture.app().test(.router) { client in
            let ok = try await client.execute(uri: "/v1/account", method: .get, headers: auth(fixture.alice.token))
            #expect(ok.status == .ok)
            _ = try await fixture.store.revokeAccount(name: "alice")
            let revoked = try await client.execute(uri: "/v1/account", method: .get, headers: auth(fixture.alice.token))
            try expectProblem(revoked, 401, slug: "unauthorized")
        }
    }

    // MARK: - 403

    // Changing another author's comment is refused change by change (200, listed in `refused`): see
    // HostileAccountTests. A push labelled as another account's is the 403 case (also there).

    // MARK: - 413

    @Test("A body over the limit: 413 problem, store unchanged", arguments: [true, false])
    func tooLarge(declareLength: Bool) async throws {
        let fixture = try await Fixture()
        let before = try await fixture.store.canonicalDump(account: nil)
        let big = [UInt8](repeating: 0x41, count: 4096)
        try await fixture.app(maxBodyBytes: 1024).test(.router) { client in
            var extra = ["Content-Type": SyncHTTP.bundleMediaType]
            if declareLength { extra["Content-Length"] = "4096" }
            let push = try await client.execute(uri: "/v1/sync/push", method: .post,
                                                headers: auth(fixture.alice.token, extra), body: ByteBuffer(bytes: big))
            try expectProblem(push, 413, slug: "content-too-large")
            extra["Content-Type"] = SyncHTTP.jsonMediaType
            let pull = try await client.execute(uri: "/v1/sync/pull", method: .post,
                                                headers: auth(fixture.alice.token, extra), body: ByteBuffer(bytes: big))
            try expectProblem(pull, 413, slug: "content-too-large")
            let health = try await client.execute(uri: "/v1/health", method: .get)
            #expect(health.status == .ok)
        }
        #expect(try await fixture.store.canonicalDump(account: nil) == before)
    }

    // MARK: - 415

    @Test("A body of the wrong media type: 415 problem", arguments: [
        ("/v1/sync/push", "application/json"), ("/v1/sync/push", "application/octet-stream"), ("/v1/sync/push", ""),
        ("/v1/sync/pull", SyncHTTP.bundleMediaType), ("/v1/sync/pull", "text/plain"), ("/v1/sync/pull", ""),
    ])
    func unsupportedMediaType(_ uri: String, _ contentType: String) async throws {
        let fixture = try await Fixture()
        let before = try await fixture.store.canonicalDump(account: nil)
        try await fixture.app().test(.router) { client in
            let extra = contentType.isEmpty ? [:] : ["Content-Type": contentType]
            let response = try await client.execute(uri: uri, method: .post, headers: auth(fixture.alice.token, extra),
                                                    body: ByteBuffer(string: #"{"knowledge":{"format":"readersync-knowledge/2","entries":[]}}"#))
            try expectProblem(response, 415, slug: "unsupported-media-type")
        }
        #expect(try await fixture.store.canonicalDump(account: nil) == before)
    }

    // MARK: - 404

    // A routed path asked with another method is a 405 (ProtocolErrorTests).
    @Test("Unknown routes: 404 problem", arguments: [
        ("/v1/nothing", "GET"), ("/nothing", "GET"), ("/v1/sync/unknown", "POST"), ("/v1/sync/push/more", "GET"),
        ("/v1/healthz", "POST"), ("/v2/sync/push", "POST"),
    ])
    func notFound(_ uri: String, _ method: String) async throws {
        let fixture = try await Fixture()
        try await fixture.app().test(.router) { client in
            let response = try await client.execute(uri: uri, method: method == "GET" ? .get : .post,
                                                    headers: auth(fixture.alice.token))
            let problem = try expectProblem(response, 404, slug: "not-found")
            #expect(problem.detail.contains(uri))
        }
    }

    // MARK: - 400

    @Test("Malformed, truncated and empty bundles: 400 problem, store unchanged", arguments: [
        "garbage", "truncated", "empty", "flipped",
    ])
    func badBundles(_ kind: String) async throws {
        let fixture = try await Fixture()
        let alice = try Replica.inMemory(account: "alice")
        try await fixture.app().test(.router) { client in
            _ = try await alice.sync(using: routerTransport(client, token: fixture.alice.token))
            for id in ["a1", "a2", "a3"] { try await alice.markRead(id) }
            try await alice.addComment(to: "a1", body: String(repeating: "words ", count: 200))
            let knowledge = try await fixture.store.knowledge(for: ServerAccount(name: "alice", role: .reader, createdAt: Date()))
            let good = try await alice.exportBundleData(for: knowledge, account: "alice").data
            let body: Data
            switch kind {
            case "garbage": body = Data((0..<500).map { UInt8(truncatingIfNeeded: $0 &* 37) })
            case "truncated": body = good.prefix(good.count / 2)
            case "empty": body = Data()
            default:
                var flipped = good
                flipped[flipped.count - 5] ^= 0xFF
                body = flipped
            }
            let before = try await fixture.store.canonicalDump(account: nil)
            let response = try await client.execute(
                uri: "/v1/sync/push", method: .post,
                headers: auth(fixture.alice.token, ["Content-Type": SyncHTTP.bundleMediaType]), body: ByteBuffer(bytes: body))
            try expectProblem(response, 400, slug: "invalid-bundle")
            #expect(try await fixture.store.canonicalDump(account: nil) == before)
            // The server is still up and the good bundle still applies.
            let retry = try await client.execute(
                uri: "/v1/sync/push", method: .post,
                headers: auth(fixture.alice.token, ["Content-Type": SyncHTTP.bundleMediaType]), body: ByteBuffer(bytes: good))
            #expect(retry.status == .ok)
        }
    }

    @Test("Invalid pull requests and absurd page sizes: 400 problem", arguments: [
        "{", "[]", "null", #"{"maxChanges": 5}"#,
        #"{"knowledge": {"entries": []}}"#,
        #"{"knowledge": {"format": "readersync-knowledge/9", "entries": []}}"#,
        #"{"knowledge": {"format": "readersync-knowledge/2", "entries": [{"origin": "not-a-uuid", "scope": "shared", "seq": 1}]}}"#,
        #"{"knowledge": {"format": "readersync-knowledge/2", "entries": [{"origin": "6d8cd32b-7ca1-495b-9a76-6262c68b33a0", "scope": "secret", "seq": 1}]}}"#,
        #"{"knowledge": {"format": "readersync-knowledge/2", "entries": [{"origin": "6d8cd32b-7ca1-495b-9a76-6262c68b33a0", "scope": "shared", "seq": -1}]}}"#,
        #"{"knowledge": {"format": "readersync-knowledge/2", "entries": []}, "maxChanges": 0}"#,
        #"{"knowledge": {"format": "readersync-knowledge/2", "entries": []}, "maxChanges": -3}"#,
        #"{"knowledge": {"format": "readersync-knowledge/2", "entries": []}, "maxChanges": 10001}"#,
        #"{"knowledge": {"format": "readersync-knowledge/2", "entries": []}, "maxChanges": 99999999999999999999}"#,
        #"{"knowledge": {"format": "readersync-knowledge/2", "entries": []}, "maxChanges": "ten"}"#,
    ])
    func badPulls(_ body: String) async throws {
        let fixture = try await Fixture()
        let before = try await fixture.store.canonicalDump(account: nil)
        try await fixture.app().test(.router) { client in
            let response = try await client.execute(
                uri: "/v1/sync/pull", method: .post,
                headers: auth(fixture.alice.token, ["Content-Type": SyncHTTP.jsonMediaType]), body: ByteBuffer(string: body))
            try expectProblem(response, 400, slug: "invalid-request")
        }
        #expect(try await fixture.store.canonicalDump(account: nil) == before)
    }

    // MARK: - 409

    @Test("A bundle that starts after changes the server lacks: 409 problem, store unchanged")
    func missingChanges() async throws {
        let fixture = try await Fixture()
        let alice = try Replica.inMemory(account: "alice")
        try await fixture.app().test(.router) { client in
            _ = try await alice.sync(using: routerTransport(client, token: fixture.alice.token))
            for id in ["a1", "a2", "a3"] { try await alice.markRead(id) }
            var pretend = try await fixture.store.knowledge(for: ServerAccount(name: "alice", role: .reader, createdAt: Date()))
            pretend.advance(origin: alice.replicaID, account: "alice", scope: .private, to: 2)
            let gap = try await alice.exportBundleData(for: pretend, account: "alice").data
            let before = try await fixture.store.canonicalDump(account: nil)
            let response = try await client.execute(
                uri: "/v1/sync/push", method: .post,
                headers: auth(fixture.alice.token, ["Content-Type": SyncHTTP.bundleMediaType]), body: ByteBuffer(bytes: gap))
            try expectProblem(response, 409, slug: "missing-changes")
            #expect(try await fixture.store.canonicalDump(account: nil) == before)
        }
    }

    // MARK: - 422

    @Test("A bundle stamped far ahead of the server's clock: 422 problem, store unchanged")
    func clockSkew() async throws {
        let fixture = try await Fixture()
        let ahead = ManualWallClock(millis: Int64(Date().timeIntervalSince1970 * 1000) + 3 * 86_400_000)  // past the 24 h bound
        let alice = try Replica.inMemory(account: "alice", options: ReplicaOptions(wallClock: ahead))
        try await fixture.app().test(.router) { client in
            let transport = routerTransport(client, token: fixture.alice.token)
            _ = try await alice.sync(using: transport)
            try await alice.markRead("a1")
            let bundle = try await alice.exportBundleData(for: try await transport.knowledge(), account: "alice").data
            let before = try await fixture.store.canonicalDump(account: nil)
            let response = try await client.execute(
                uri: "/v1/sync/push", method: .post,
                headers: auth(fixture.alice.token, ["Content-Type": SyncHTTP.bundleMediaType]), body: ByteBuffer(bytes: bundle))
            try expectProblem(response, 422, slug: "clock-skew")
            #expect(try await fixture.store.canonicalDump(account: nil) == before)
        }
    }
}
