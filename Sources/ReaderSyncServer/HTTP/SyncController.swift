import Foundation
import Hummingbird
import Logging
import ReaderSync

/// The HTTP sync API (`Schemas/openapi.yaml`), served over a ``ServerStore``.
struct SyncController {
    let store: any ServerStore
    let configuration: ServerConfiguration

    /// The methods each path takes (for 405 answers); ``addRoutes(to:)`` routes exactly these.
    static let allowedMethods: [String: [HTTPRequest.Method]] = [
        "/v1/health": [.get],
        "/v1/account": [.get],
        "/v1/sync/knowledge": [.get],
        "/v1/sync/push": [.post],
        "/v1/sync/pull": [.post],
        "/v1/sync/check": [.post],
        "/v1/articles/bodies": [.post],
    ]

    /// The largest body of `POST /v1/articles/bodies` (or ``ServerConfiguration/maxBodyBytes`` if smaller): 200
    /// ids of 512 bytes, even written with `\u` escapes, fit with room to spare.
    static let maxBodiesRequestBytes = 1 << 20
    /// The most bytes of body text one answer of `POST /v1/articles/bodies` carries before the rest of the ids
    /// are left for another request (``ArticleBodiesAnswer/truncated``); one body may go past it.
    static let maxBodiesAnswerBytes = 8 << 20

    /// Adds the routes: health without a token, the rest behind bearer authentication.
    func addRoutes(to router: Router<ServerRequestContext>) {
        router.get("/v1/health") { _, _ in try JSON.response(["status": "ok"]) }
        let authenticated = router.group("/v1").add(middleware: BearerAuthMiddleware(store: store))
        authenticated.get("account", use: account)
        authenticated.get("sync/knowledge", use: knowledge)
        authenticated.post("sync/push", use: push)
        authenticated.post("sync/pull", use: pull)
        authenticated.post("sync/check", use: check)
        authenticated.post("articles/bodies", use: bodies)
    }

    // MARK: - Routes

    /// `GET /v1/account`: who the token belongs to.
    @Sendable func account(_ request: Request, context: ServerRequestContext) async throws -> Response {
        let account = try context.requireAccount()
        return try JSON.response(RemoteAccount(name: account.name, role: account.role))
    }

    /// `GET /v1/sync/knowledge`: what the server holds that this account may see.
    @Sendable func knowledge(_ request: Request, context: ServerRequestContext) async throws -> Response {
        let account = try context.requireAccount()
        return try JSON.response(try await store.knowledge(for: account))
    }

    /// `POST /v1/sync/push`: applies a bundle atomically and says what the server now holds.
    @Sendable func push(_ request: Request, context: ServerRequestContext) async throws -> Response {
        let account = try context.requireAccount()
        try requireMediaType(request, SyncHTTP.bundleMediaType)
        let bundle = try await body(of: request)
        let answer = try await store.push(bundle, from: account, limits: configuration.pushLimits)
        context.logger.info("push", metadata: [
            "bytes": "\(bundle.count)", "received": "\(answer.received)", "applied": "\(answer.applied)",
            "duplicates": "\(answer.duplicates)", "ignored": "\(answer.ignored)", "refused": "\(answer.refused.count)",
        ])
        return try JSON.response(answer)
    }

    /// `POST /v1/sync/pull`: a page of what the client's knowledge lacks.
    @Sendable func pull(_ request: Request, context: ServerRequestContext) async throws -> Response {
        let account = try context.requireAccount()
        try requireMediaType(request, SyncHTTP.jsonMediaType)
        let data = try await body(of: request)
        let pull: PullRequestBody
        do {
            pull = try PullRequestBody.decode(json: data)
        } catch let error as ReaderSyncError {
            throw ProblemError.badRequest(error.message)
        }
        let maxChanges = pull.maxChanges ?? configuration.defaultPageSize
        let page = try await store.pull(knowledge: pull.knowledge, for: account, maxChanges: maxChanges)
        context.logger.info("pull", metadata: [
            "bytes": "\(page.bundle.count)", "maxChanges": "\(maxChanges)", "complete": "\(page.isComplete)",
        ])
        var headers: HTTPFields = [.contentType: SyncHTTP.bundleMediaType]
        if let complete = HTTPFields.Element.Name(SyncHTTP.completeHeader) {
            headers[complete] = page.isComplete ? "true" : "false"
        }
        if let remaining = page.remainingChanges, let name = HTTPFields.Element.Name(SyncHTTP.remainingHeader) {
            headers[name] = String(remaining)
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: page.bundle)))
    }

    /// `POST /v1/sync/check`: whether the client, whose knowledge has the digest sent, holds exactly what the
    /// server holds for this account — the no-op sync in one request.
    @Sendable func check(_ request: Request, context: ServerRequestContext) async throws -> Response {
        let account = try context.requireAccount()
        try requireMediaType(request, SyncHTTP.jsonMediaType)
        let data = try await body(of: request)
        let check: SyncCheckRequest
        do {
            check = try SyncCheckRequest.decode(json: data)
        } catch let error as ReaderSyncError {
            throw ProblemError.badRequest(error.message)
        }
        let held = try await store.knowledge(for: account).digest(account: account.name)
        return try JSON.response(SyncCheck(upToDate: held == check.digest, account: account.name, role: account.role))
    }

    /// `POST /v1/articles/bodies`: the bodies of articles, for a device that evicted them. Articles are shared, so
    /// any account may ask for any article's body.
    @Sendable func bodies(_ request: Request, context: ServerRequestContext) async throws -> Response {
        _ = try context.requireAccount()
        try requireMediaType(request, SyncHTTP.jsonMediaType)
        let data = try await body(of: request, limit: min(configuration.maxBodyBytes, Self.maxBodiesRequestBytes),
                                  hint: "ask for at most \(ArticleBodiesRequest.maxIDs) ids")
        let ask: ArticleBodiesRequest
        do {
            ask = try ArticleBodiesRequest.decode(json: data)
        } catch let error as ReaderSyncError {
            throw ProblemError.badRequest(error.message)
        }
        let answer = try await store.articleBodies(ask.ids, maxBytes: Self.maxBodiesAnswerBytes)
        context.logger.info("bodies", metadata: [
            "asked": "\(ask.ids.count)", "bodies": "\(answer.bodies.count)", "missing": "\(answer.missing.count)",
            "truncated": "\(answer.truncated.count)",
        ])
        return try JSON.response(answer)
    }

    // MARK: - Helpers

    private func requireMediaType(_ request: Request, _ expected: String) throws {
        let got = request.headers[.contentType]
        guard SyncHTTP.mediaType(got) == expected else {
            throw ProblemError.unsupportedMediaType(expected: expected, got: got)
        }
    }

    /// The request body, at most `limit` bytes (by default ``ServerConfiguration/maxBodyBytes``), or 413 with `hint`.
    private func body(of request: Request, limit: Int? = nil, hint: String = "push in smaller pages") async throws -> Data {
        let limit = limit ?? configuration.maxBodyBytes
        if let declared = request.headers[.contentLength].flatMap(Int.init), declared > limit {
            throw ProblemError.contentTooLarge(limit: limit, hint: hint)
        }
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: limit)
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            throw ProblemError.contentTooLarge(limit: limit, hint: hint)
        }
        return Data(buffer.readableBytesView)
    }
}
