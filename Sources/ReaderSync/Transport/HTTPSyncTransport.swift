public import Foundation

/// One HTTP request of the sync protocol, independent of the client library that sends it.
package struct SyncHTTPRequest: Sendable, Equatable {
    /// `GET` or `POST`.
    package var method: String
    /// The path below the server's base URL, for example `v1/sync/push` (no leading slash).
    package var path: String
    /// Header fields.
    package var headers: [String: String]
    /// The body, if any.
    package var body: Data?

    /// Creates a request.
    package init(method: String, path: String, headers: [String: String] = [:], body: Data? = nil) {
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
    }
}

/// One HTTP response of the sync protocol.
package struct SyncHTTPResponse: Sendable, Equatable {
    /// The status code.
    package var status: Int
    /// Header fields, names lowercased.
    package var headers: [String: String]
    /// The body.
    package var body: Data

    /// Creates a response; header names are lowercased.
    package init(status: Int, headers: [String: String], body: Data) {
        self.status = status
        self.headers = Dictionary(headers.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { a, _ in a })
        self.body = body
    }

    /// The value of a header field, by case-insensitive name.
    package func header(_ name: String) -> String? { headers[name.lowercased()] }
}

/// The sync protocol over any HTTP client: builds the requests, checks and decodes the responses, and turns
/// problems into ``ReaderSyncError``.
///
/// ``URLSessionTransport`` uses it with `URLSession`; tests use it with an in-process client, so every HTTP
/// client shares this one encoding.
package struct HTTPSyncTransport: SyncTransport {
    /// Sends one request and returns the response; throws only for network failures.
    package typealias Send = @Sendable (SyncHTTPRequest) async throws -> SyncHTTPResponse

    /// Where requests go, for error messages (for example `http://127.0.0.1:8080`).
    package let serverDescription: String
    private let token: String?
    private let send: Send

    /// Creates a transport that sends through `send`, with `token` as the bearer token.
    package init(serverDescription: String, token: String?, send: @escaping Send) {
        self.serverDescription = serverDescription
        self.token = token
        self.send = send
    }

    /// Who the token belongs to (`GET /v1/account`).
    package func account() async throws -> RemoteAccount {
        let response = try await exchange(SyncHTTPRequest(method: "GET", path: "v1/account"), expecting: SyncHTTP.jsonMediaType)
        return try decode(RemoteAccount.self, from: response, what: "account")
    }

    /// What the server holds that this account may see (`GET /v1/sync/knowledge`).
    package func knowledge() async throws -> Knowledge {
        let response = try await exchange(SyncHTTPRequest(method: "GET", path: "v1/sync/knowledge"),
                                          expecting: SyncHTTP.jsonMediaType)
        return try decode(Knowledge.self, from: response, what: "knowledge")
    }

    /// Sends a bundle (`POST /v1/sync/push`).
    package func push(_ bundle: Data) async throws -> PushResponse {
        let request = SyncHTTPRequest(method: "POST", path: "v1/sync/push",
                                      headers: ["Content-Type": SyncHTTP.bundleMediaType], body: bundle)
        let response = try await exchange(request, expecting: SyncHTTP.jsonMediaType)
        return try decode(PushResponse.self, from: response, what: "push answer")
    }

    /// Asks for a page of what `knowledge` lacks (`POST /v1/sync/pull`).
    package func pull(knowledge: Knowledge, maxChanges: Int?) async throws -> PullPage {
        let body: Data
        do {
            body = try JSONEncoder().encode(PullRequestBody(knowledge: knowledge, maxChanges: maxChanges))
        } catch {
            throw ReaderSyncError.transport("cannot encode the pull request: \(error)")
        }
        let request = SyncHTTPRequest(method: "POST", path: "v1/sync/pull",
                                      headers: ["Content-Type": SyncHTTP.jsonMediaType], body: body)
        let response = try await exchange(request, expecting: SyncHTTP.bundleMediaType)
        // Optional, for progress only: a missing or unreadable count is ignored.
        let remaining = response.header(SyncHTTP.remainingHeader).flatMap { Int($0) }.flatMap { $0 >= 0 ? $0 : nil }
        switch response.header(SyncHTTP.completeHeader)?.lowercased() {
        case "true": return PullPage(bundle: response.body, isComplete: true, remainingChanges: 0)
        case "false": return PullPage(bundle: response.body, isComplete: false, remainingChanges: remaining)
        default:
            throw ReaderSyncError.transport(
                "\(serverDescription) sent a pull page without a valid \(SyncHTTP.completeHeader) header; is it a ReaderSync server?")
        }
    }

    /// The one-request no-op check (`POST /v1/sync/check`); nil from a server that does not offer it (404, 405).
    package func check(digest: String) async throws -> SyncCheck? {
        let request = SyncHTTPRequest(method: "POST", path: "v1/sync/check",
                                      headers: ["Content-Type": SyncHTTP.jsonMediaType],
                                      body: Data("{\"digest\":\"\(digest)\"}".utf8))
        let response = try await exchange(request, expecting: SyncHTTP.jsonMediaType, absentIfNotFound: true)
        guard let response else { return nil }
        return try decode(SyncCheck.self, from: response, what: "check answer")
    }

    /// Asks for the bodies of articles (`POST /v1/articles/bodies`, at most ``ArticleBodiesRequest/maxIDs`` ids).
    package func fetchBodies(_ ids: [String]) async throws -> ArticleBodiesAnswer {
        let body: Data
        do {
            body = try JSONEncoder().encode(ArticleBodiesRequest(ids: ids))
        } catch {
            throw ReaderSyncError.transport("cannot encode the bodies request: \(error)")
        }
        let request = SyncHTTPRequest(method: "POST", path: "v1/articles/bodies",
                                      headers: ["Content-Type": SyncHTTP.jsonMediaType], body: body)
        let response = try await exchange(request, expecting: SyncHTTP.jsonMediaType)
        return try decode(ArticleBodiesAnswer.self, from: response, what: "bodies answer")
    }

    // MARK: - Plumbing

    private func exchange(_ request: SyncHTTPRequest, expecting mediaType: String) async throws -> SyncHTTPResponse {
        guard let response = try await exchange(request, expecting: mediaType, absentIfNotFound: false) else {
            throw ReaderSyncError.transport("\(serverDescription) answered \(request.method) /\(request.path) with nothing")
        }
        return response
    }

    private func exchange(_ request: SyncHTTPRequest, expecting mediaType: String,
                          absentIfNotFound: Bool) async throws -> SyncHTTPResponse? {
        var request = request
        if let token { request.headers["Authorization"] = "Bearer \(token)" }
        request.headers["Accept"] = "\(mediaType), \(SyncHTTP.problemMediaType)"
        let response: SyncHTTPResponse
        do {
            response = try await send(request)
        } catch let error as ReaderSyncError {
            throw error
        } catch is CancellationError {
            throw ReaderSyncError.transport("sync with \(serverDescription) was cancelled")
        } catch {
            throw ReaderSyncError.transport("cannot reach \(serverDescription): \(Self.describeNetworkError(error))")
        }
        if absentIfNotFound && (response.status == 404 || response.status == 405) { return nil }
        guard (200..<300).contains(response.status) else { throw problem(response, request: request) }
        guard SyncHTTP.mediaType(response.header("Content-Type")) == mediaType else {
            throw ReaderSyncError.transport(
                "\(serverDescription) answered \(request.method) /\(request.path) with \(response.header("Content-Type") ?? "no content type") instead of \(mediaType); is it a ReaderSync server?")
        }
        return response
    }

    private func decode<T: Decodable>(_ type: T.Type, from response: SyncHTTPResponse, what: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: response.body)
        } catch let error as DecodingError {
            throw ReaderSyncError.transport("\(serverDescription) sent an unreadable \(what): \(describe(error))")
        } catch {
            throw ReaderSyncError.transport("\(serverDescription) sent an unreadable \(what): \(error)")
        }
    }

    /// The error for a non-2xx answer: the problem's detail if it sent one.
    private func problem(_ response: SyncHTTPResponse, request: SyncHTTPRequest) -> ReaderSyncError {
        let problem = try? JSONDecoder().decode(ProblemDetails.self, from: response.body)
        let detail = problem?.detail ?? "HTTP \(response.status) without a problem report"
        switch response.status {
        case 401:
            return .server(status: 401, token == nil
                ? "\(serverDescription) needs a token (401: \(detail))"
                : "\(serverDescription) rejected the token: it is unknown or revoked (401: \(detail))")
        case 403:
            return .server(status: 403, "\(serverDescription) refused \(request.method) /\(request.path) (403): \(detail)")
        default:
            return .server(status: response.status,
                           "\(serverDescription) answered \(request.method) /\(request.path) with \(response.status): \(detail)")
        }
    }

    /// One line for a network error.
    static func describeNetworkError(_ error: any Error) -> String {
        "\(error)".replacingOccurrences(of: "\n", with: " ")
    }
}
