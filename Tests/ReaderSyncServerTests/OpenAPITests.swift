import Foundation
import Hummingbird
import HummingbirdTesting
import ReaderSync
import ReaderSyncServer
import Testing

/// `Schemas/openapi.yaml` and the router agree.
@Suite("OpenAPI document")
struct OpenAPITests {
    /// The package root, from this file's path.
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Every `path` + `method` under `paths:`, read crudely: two-space path keys, four-space method keys.
    static func operations() throws -> [(path: String, method: String)] {
        let text = try String(contentsOf: packageRoot.appendingPathComponent("Schemas/openapi.yaml"), encoding: .utf8)
        var result: [(String, String)] = []
        var inPaths = false
        var path: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if !line.hasPrefix(" ") && !line.isEmpty { inPaths = line == "paths:"; path = nil; continue }
            guard inPaths else { continue }
            if line.hasPrefix("  /"), !line.hasPrefix("   "), line.hasSuffix(":") {
                path = String(line.dropFirst(2).dropLast())
            } else if let path, line.hasPrefix("    "), !line.hasPrefix("     "), line.hasSuffix(":") {
                let key = line.trimmingCharacters(in: .whitespaces).dropLast()
                if ["get", "post", "put", "patch", "delete"].contains(String(key)) { result.append((path, String(key))) }
            }
        }
        return result
    }

    @Test("Every path and method in openapi.yaml is routed")
    func everyOperationIsRouted() async throws {
        let operations = try Self.operations()
        #expect(operations.count == 7)
        let fixture = try await Fixture()
        try await fixture.app().test(.router) { client in
            for (path, method) in operations {
                let response = try await client.execute(uri: path, method: method == "post" ? .post : .get)
                #expect(response.status != .notFound, "\(method.uppercased()) \(path) is not routed")
            }
            // And the check can fail: an unknown path is a 404.
            let unknown = try await client.execute(uri: "/v1/not-in-the-document", method: .get)
            #expect(unknown.status == .notFound)
        }
    }

    @Test("The document names the problem types the server answers")
    func problemTypesDocumented() throws {
        let text = try String(contentsOf: Self.packageRoot.appendingPathComponent("Schemas/openapi.yaml"), encoding: .utf8)
        for slug in ["not-found", "unauthorized", "forbidden", "invalid-request", "invalid-bundle", "missing-changes",
                     "clock-skew", "invalid-value", "content-too-large", "unsupported-media-type", "internal", "method-not-allowed",
                     "too-many-changes", "comment-too-long", "rate-limited", "request-timeout", "header-too-large"] {
            #expect(text.contains(slug), "\(slug) is not documented")
        }
        #expect(text.contains("openapi: 3.1"))
        #expect(text.contains(SyncHTTP.completeHeader))
        #expect(text.contains(SyncHTTP.bundleMediaType))
        for status in ["MethodNotAllowed:", "\"408\"", "\"413\"", "\"429\"", "\"431\"", "Retry-After:", "Allow:"] {
            #expect(text.contains(status), "\(status) is not documented")
        }
    }
}
