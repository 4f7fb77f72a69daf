import Foundation
import Hummingbird
import HummingbirdTesting
import ReaderSync
import ReaderSyncServer
import Testing

/// Requests that name a routed path with the wrong method, and pull bodies with values of the wrong kind: each
/// answered with a problem that says what is wrong.
@Suite("Protocol errors")
struct ProtocolErrorTests {
    @Test("A routed path asked with another method is a 405 with Allow; an unknown path stays a 404",
          arguments: [
              ("POST", "/v1/health", "GET"), ("DELETE", "/v1/account", "GET"), ("PUT", "/v1/sync/knowledge", "GET"),
              ("GET", "/v1/sync/push", "POST"), ("GET", "/v1/sync/pull", "POST"), ("PATCH", "/v1/sync/pull/", "POST"),
          ])
    func methodNotAllowed(_ method: String, _ path: String, _ allowed: String) async throws {
        let fixture = try await Fixture()
        try await fixture.app().test(.router) { client in
            let response = try await client.execute(uri: path, method: HTTPRequest.Method(method) ?? .get,
                                                    headers: auth(fixture.alice.token))
            let problem = try expectProblem(response, 405, slug: "method-not-allowed")
            #expect(response.header("Allow") == allowed)
            #expect(problem.detail.contains("takes \(allowed)"))

            let unknown = try await client.execute(uri: "/v1/nothing-here", method: HTTPRequest.Method(method) ?? .get)
            try expectProblem(unknown, 404, slug: "not-found")
            #expect(unknown.header("Allow") == nil)
        }
    }

    @Test("HEAD on a GET route is a 405 without a body")
    func headHasNoBody() async throws {
        let fixture = try await Fixture()
        try await fixture.app().test(.router) { client in
            let response = try await client.execute(uri: "/v1/health", method: .head)
            #expect(response.status == .methodNotAllowed)
            #expect(response.header("Allow") == "GET")
            #expect(response.body.readableBytes == 0)
        }
    }

    /// A pull body with `knowledge` holding one entry whose `seq` is `seq` (JSON text), and `extra` fields.
    static func pullBody(seq: String, extra: String = "") -> String {
        #"{"knowledge":{"format":"readersync-knowledge/2","entries":[{"origin":"0b7e5b4a-6a3d-4a53-9d64-1d0c8f3f7a10","account":"alice","scope":"shared","seq":\#(seq)}]}\#(extra)}"#
    }

    @Test("A pull body's wrong values are refused naming the field and what is wrong",
          arguments: [
              (pullBody(seq: "1", extra: #","maxChanges":null"#),
               "maxChanges must be an integer between 1 and 10000, got null; leave it out for the server's default"),
              (pullBody(seq: "9223372036854775808"),
               "not a pull request: knowledge.entries[0].seq: 9223372036854775808 is out of range: numbers in a pull request are integers from 0 to 9223372036854775807"),
              (pullBody(seq: "1e30"),
               "not a pull request: knowledge.entries[0].seq: 1e+30 is out of range: numbers in a pull request are integers from 0 to 9223372036854775807"),
              (pullBody(seq: "-1"),
               "not a pull request: knowledge.entries[0].seq: -1 is out of range: numbers in a pull request are integers from 0 to 9223372036854775807"),
              (pullBody(seq: "1.5"),
               "not a pull request: knowledge.entries[0].seq: 1.5 is not an integer: numbers in a pull request are integers from 0 to 9223372036854775807"),
              (pullBody(seq: "1", extra: #","maxChanges":25.5"#),
               "not a pull request: maxChanges: 25.5 is not an integer: numbers in a pull request are integers from 0 to 9223372036854775807"),
              (pullBody(seq: "1", extra: #","maxChanges":0"#), "maxChanges must be between 1 and 10000, got 0"),
          ])
    func pullBodyValues(_ body: String, _ detail: String) async throws {
        let fixture = try await Fixture()
        try await fixture.app().test(.router) { client in
            let response = try await client.execute(
                uri: "/v1/sync/pull", method: .post,
                headers: auth(fixture.alice.token, ["Content-Type": SyncHTTP.jsonMediaType]), body: ByteBuffer(string: body))
            let problem = try expectProblem(response, 400, slug: "invalid-request")
            #expect(problem.detail == detail)
        }
        // The largest sequence number is a valid one, and so are whole numbers written with a fraction or exponent.
        let largest = try PullRequestBody.decode(json: Data(Self.pullBody(seq: "9223372036854775807").utf8))
        #expect(largest.knowledge.total == UInt64(Int64.max))
        let written = try PullRequestBody.decode(json: Data(Self.pullBody(seq: "1e3", extra: #","maxChanges":2.0"#).utf8))
        #expect(written.knowledge.total == 1_000 && written.maxChanges == 2)
    }
}
