import Foundation
public import Hummingbird
import Logging
import NIOHTTP1
public import ReaderSync

/// An error that reaches a client: an HTTP status with an RFC 9457 problem body (`application/problem+json`).
///
/// Every failure the server answers is one of these; anything else thrown by a handler is a bug and is
/// answered as a 500 problem (and logged).
public struct ProblemError: HTTPResponseError, Sendable, CustomStringConvertible {
    /// The HTTP status.
    public var status: HTTPResponse.Status
    /// The last part of the problem type URI (`urn:readersync:problem:<slug>`).
    public var slug: String
    /// A short summary of the kind of problem.
    public var title: String
    /// What went wrong this time, as one line.
    public var detail: String
    /// For a refused comment change: the comment.
    public var comment: String?
    /// Extra response headers (for example `WWW-Authenticate`).
    public var headers: HTTPFields

    /// Creates a problem.
    public init(_ status: HTTPResponse.Status, slug: String, title: String, detail: String, comment: String? = nil,
                headers: HTTPFields = [:]) {
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.comment = comment
        self.headers = headers
    }

    /// The problem body.
    package var details: ProblemDetails {
        ProblemDetails(type: SyncHTTP.problemTypePrefix + slug, title: title, status: status.code, detail: detail,
                       comment: comment)
    }

    /// `status slug: detail`, for logs.
    public var description: String { "\(status.code) \(slug): \(detail)" }

    /// The problem as a response.
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = headers
        headers[.contentType] = SyncHTTP.problemMediaType
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: try JSON.encode(details))))
    }

    // MARK: - The problems the server answers

    /// 400: a request the server cannot read.
    static func badRequest(_ detail: String) -> ProblemError {
        ProblemError(.badRequest, slug: "invalid-request", title: "Invalid request", detail: detail)
    }

    /// 401: no token, or an unknown or revoked one.
    static func unauthorized(_ detail: String, invalidToken: Bool) -> ProblemError {
        let challenge = invalidToken ? "Bearer realm=\"readersync\", error=\"invalid_token\"" : "Bearer realm=\"readersync\""
        return ProblemError(.unauthorized, slug: "unauthorized", title: "Unauthorized", detail: detail,
                            headers: [.wwwAuthenticate: challenge])
    }

    /// 415: a body of the wrong media type.
    static func unsupportedMediaType(expected: String, got: String?) -> ProblemError {
        ProblemError(.unsupportedMediaType, slug: "unsupported-media-type", title: "Unsupported media type",
                     detail: "this route takes \(expected), got \(got ?? "no Content-Type")")
    }

    /// 413: a body over the limit; `hint` says what to do instead.
    static func contentTooLarge(limit: Int, hint: String = "push in smaller pages") -> ProblemError {
        ProblemError(.contentTooLarge, slug: "content-too-large", title: "Content too large",
                     detail: "request bodies are limited to \(limit) bytes; \(hint)")
    }

    /// 408: a request head or body that stopped arriving (see ``ConnectionLimits``).
    static func requestTimeout(_ detail: String) -> ProblemError {
        ProblemError(.requestTimeout, slug: "request-timeout", title: "Request timeout", detail: detail,
                     headers: [.connection: "close"])
    }

    /// 405: a routed path asked with a method it does not serve; `Allow` lists the ones it does.
    static func methodNotAllowed(_ method: HTTPRequest.Method, path: String, allowed: [HTTPRequest.Method]) -> ProblemError {
        let list = allowed.map(\.rawValue).joined(separator: ", ")
        return ProblemError(.methodNotAllowed, slug: "method-not-allowed", title: "Method not allowed",
                            detail: "\(path) does not take \(method); it takes \(list)", headers: [.allow: list])
    }

    /// 500: a bug or a failing store; the detail says no more than that.
    static func internalError(requestID: String) -> ProblemError {
        ProblemError(.internalServerError, slug: "internal", title: "Internal server error",
                     detail: "the server failed to handle this request (request id \(requestID)); its log has the cause")
    }

    /// The problem for a store error.
    init(_ error: ServerStoreError) {
        switch error.kind {
        case .invalidInput:
            self.init(.badRequest, slug: "invalid-request", title: "Invalid request", detail: error.message)
        case .invalidBundle:
            self.init(.badRequest, slug: "invalid-bundle", title: "Invalid bundle", detail: error.message)
        case .missingChanges:
            self.init(.conflict, slug: "missing-changes", title: "Bundle starts after changes the server lacks",
                      detail: error.message + "; fetch the server's knowledge and export again")
        case .invalidValue:
            self.init(.unprocessableContent, slug: "invalid-value", title: "A change's value is outside its field's rule",
                      detail: error.message)
        case .clockSkew:
            self.init(.unprocessableContent, slug: "clock-skew", title: "Clock skew", detail: error.message)
        case .forbidden:
            self.init(.forbidden, slug: "forbidden", title: "Forbidden", detail: error.message, comment: error.commentID)
        case .notFound:
            self.init(.notFound, slug: "not-found", title: "Not found", detail: error.message)
        case .alreadyExists:
            self.init(.conflict, slug: "conflict", title: "Conflict", detail: error.message)
        case .tooManyChanges:
            self.init(.contentTooLarge, slug: "too-many-changes", title: "Too many changes in one push",
                      detail: error.message)
        case .commentTooLong:
            self.init(.contentTooLarge, slug: "comment-too-long", title: "Comment too long", detail: error.message,
                      comment: error.commentID)
        case .rateLimited:
            let seconds = max(1, error.retryAfterSeconds ?? 60)
            self.init(.tooManyRequests, slug: "rate-limited", title: "Too many changes per minute",
                      detail: error.message, headers: [.retryAfter: "\(seconds)"])
        case .storage:
            self.init(.internalServerError, slug: "internal", title: "Internal server error",
                      detail: "the server's store failed; its log has the cause")
        }
    }
}

/// Turns every error a handler throws into a problem response, and logs each request.
///
/// Added first on the router, so it also covers unknown routes (404), routed paths asked with another method (405,
/// from `allowedMethods`) and body limits (413). A `HEAD` answer carries no body.
struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The methods each routed path takes.
    let allowedMethods: [String: [HTTPRequest.Method]]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            response = try problem(for: error, request: request, context: context).response(from: request, context: context)
        }
        if request.method == .head { response.body = .init() }
        let elapsed = ContinuousClock.now - started
        let millis = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        context.logger.info("request", metadata: [
            "http.method": "\(request.method)", "http.path": "\(request.uri.path)",
            "http.status": "\(response.status.code)", "duration_ms": "\(String(format: "%.1f", millis))",
        ])
        return response
    }

    private func problem(for error: any Error, request: Request, context: Context) -> ProblemError {
        switch error {
        case let problem as ProblemError:
            if problem.status.code >= 500 { context.logger.error("request failed", metadata: ["error": "\(problem)"]) }
            return problem
        case let error as ServerStoreError:
            if error.kind == .storage {
                context.logger.error("store failed", metadata: ["error": "\(error.message)"])
            }
            return ProblemError(error)
        case let error as HTTPError where error.status == .notFound:
            let path = request.uri.path
            let trimmed = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
            if let allowed = allowedMethods[trimmed], !allowed.contains(request.method) {
                return ProblemError.methodNotAllowed(request.method, path: trimmed, allowed: allowed)
            }
            return ProblemError(.notFound, slug: "not-found", title: "Not found",
                                detail: "no route for \(request.method) \(path)")
        case let error as HTTPParserError:
            return ProblemError.badRequest("the request is not valid HTTP/1.1 (\(error))")
        case let error as any HTTPResponseError where error.status == .contentTooLarge:
            return ProblemError(.contentTooLarge, slug: "content-too-large", title: "Content too large",
                                detail: "the request body is larger than this server accepts")
        case let error as any HTTPResponseError:
            return ProblemError(error.status, slug: "http-\(error.status.code)", title: error.status.reasonPhrase,
                                detail: (error as? HTTPError)?.body ?? error.status.reasonPhrase)
        default:
            context.logger.error("unhandled error (a bug)", metadata: ["error": "\(String(reflecting: error))"])
            let requestID = context.logger[metadataKey: "hb.request.id"].map { "\($0)" } ?? "unknown"
            return ProblemError.internalError(requestID: requestID)
        }
    }
}

/// The server's JSON: sorted keys, no escaped slashes.
enum JSON {
    static func encode(_ value: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value)
    }

    /// A 200 JSON response.
    static func response(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try encode(value)
        return Response(status: status, headers: [.contentType: SyncHTTP.jsonMediaType],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
