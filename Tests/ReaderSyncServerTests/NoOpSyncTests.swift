import Foundation
import Hummingbird
import HummingbirdTesting
import ReaderSync
import ReaderSyncServer
import Synchronization
import Testing

/// A sync with nothing to move is one request and one answer (issue "The sync server against hostile accounts",
/// "a no-op sync in one round trip").
@Suite("The no-op sync")
struct NoOpSyncTests {
    /// Requests made through a transport, with their body sizes.
    final class Traffic: Sendable {
        let log = Mutex<[(path: String, sent: Int, received: Int)]>([])
        var requests: [(path: String, sent: Int, received: Int)] { log.withLock { $0 } }
        func reset() { log.withLock { $0 = [] } }
    }

    static func countingTransport(_ client: any TestClientProtocol, token: String, traffic: Traffic) -> HTTPSyncTransport {
        HTTPSyncTransport(serverDescription: "test-router", token: token) { request in
            let response = try await client.executeRequest(
                uri: "/" + request.path, method: request.method == "POST" ? .post : .get,
                headers: fields(request.headers), body: request.body.map { ByteBuffer(bytes: $0) })
            var headers: [String: String] = [:]
            for field in response.headers { headers[field.name.canonicalName] = field.value }
            traffic.log.withLock { $0.append((request.path, request.body?.count ?? 0, response.body.readableBytes)) }
            return SyncHTTPResponse(status: response.status.code, headers: headers, body: Data(buffer: response.body))
        }
    }

    @Test("After a sync, the next one with nothing new is a single check of under 300 bytes each way")
    func oneRequest() async throws {
        let fixture = try await Fixture()
        let phone = try Replica.inMemory(account: "alice")
        let laptop = try Replica.inMemory(account: "alice")
        let traffic = Traffic()
        try await fixture.app().test(.router) { client in
            let transport = Self.countingTransport(client, token: fixture.alice.token, traffic: traffic)
            _ = try await phone.sync(using: transport)
            try await phone.markRead("a1")
            try await phone.addComment(to: "a1", body: "hello")
            _ = try await phone.sync(using: transport)
            _ = try await laptop.sync(using: transport)

            traffic.reset()
            let report = try await phone.sync(using: transport)
            #expect(report.wasUpToDate)
            #expect(report.pushed.changes == 0 && report.pulled.changes == 0)
            let requests = traffic.requests
            #expect(requests.map(\.path) == ["v1/sync/check"], "\(requests.map(\.path))")
            #expect(requests.allSatisfy { $0.sent < 300 && $0.received < 300 }, "\(requests)")

            // Something moved elsewhere: the check says so and the full exchange brings it.
            try await laptop.save("a2")
            _ = try await laptop.sync(using: transport)
            traffic.reset()
            let moved = try await phone.sync(using: transport)
            #expect(!moved.wasUpToDate && moved.pulled.applied == 1)
            await #expect(try phone.readState(of: "a2").isSaved)
            #expect(traffic.requests.first?.path == "v1/sync/check")
            // A local change: not up to date either.
            try await phone.setProgress("a3", 0.5)
            let pushed = try await phone.sync(using: transport)
            #expect(!pushed.wasUpToDate && pushed.pushed.applied == 1)
            #expect(try await phone.sync(using: transport).wasUpToDate)
        }
    }

    @Test("A check with a malformed digest is a 400 problem; another account's token is named")
    func badCheck() async throws {
        let fixture = try await Fixture()
        try await fixture.app().test(.router) { client in
            let response = try await client.execute(uri: "/v1/sync/check", method: .post,
                                                    headers: auth(fixture.alice.token, ["Content-Type": "application/json"]),
                                                    body: ByteBuffer(string: #"{"digest":"XYZ"}"#))
            let problem = try expectProblem(response, 400)
            #expect(problem.detail.contains("64 lowercase hexadecimal digits"))
            let alice = try Replica.inMemory(account: "alice")
            await #expect(throws: ReaderSyncError.self) {
                _ = try await alice.sync(using: routerTransport(client, token: fixture.bob.token))
            }
        }
    }
}
