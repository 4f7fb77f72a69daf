public import Foundation
#if canImport(FoundationNetworking)
public import FoundationNetworking
#endif

/// The HTTP sync protocol over `URLSession`, with a bearer token.
///
/// ```swift
/// let transport = try URLSessionTransport(url: "https://sync.example.org", token: token)
/// let report = try await replica.sync(using: transport)
/// ```
///
/// Network failures become ``ReaderSyncError/transport(_:)`` with one clear line; a 401 says the token was
/// rejected; a 403 becomes ``ReaderSyncError/forbidden(_:)``. A server that answers 429 or 503 with `Retry-After`
/// (its per-account limits) is waited for and asked again, a bounded number of times (``RetryPolicy``); past that,
/// the error says why the server refused and when to try again.
public struct URLSessionTransport: SyncTransport {
    /// The server's base URL (paths such as `v1/sync/push` are resolved below it).
    public let baseURL: URL
    private let http: HTTPSyncTransport

    /// Creates a transport for the server at `url` (`http://` or `https://`, optionally with a path prefix).
    ///
    /// - Parameters:
    ///   - url: the server's address, such as `https://sync.example.com`.
    ///   - token: the account's bearer token (nil for none: the server will answer 401).
    ///   - timeout: seconds a request may wait for data before it fails.
    ///   - retry: how long and how often to wait for a server that asks to retry later.
    ///   - onRetry: called before each wait, to tell the user why the sync pauses.
    /// - Throws: ``ReaderSyncError/invalidInput(_:)`` for a URL that is not http(s).
    public init(url: String, token: String?, timeout: TimeInterval = 60, retry: RetryPolicy = RetryPolicy(),
                onRetry: (@Sendable (RetryNotice) -> Void)? = nil) throws {
        try self.init(url: url, token: token, timeout: timeout, retry: retry, onRetry: onRetry) { seconds in
            try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
        }
    }

    /// Like ``init(url:token:timeout:retry:onRetry:)``, with the wait itself replaced: a test hook (a test's `sleep`
    /// moves a fake server clock instead of waiting). Not for use outside tests.
    package init(url: String, token: String?, timeout: TimeInterval = 60, retry: RetryPolicy = RetryPolicy(),
                 onRetry: (@Sendable (RetryNotice) -> Void)? = nil,
                 sleep: @escaping @Sendable (TimeInterval) async throws -> Void) throws {
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(),
              scheme == "http" || scheme == "https", parsed.host != nil else {
            throw ReaderSyncError.invalidInput("'\(url)' is not a server URL such as http://127.0.0.1:8080")
        }
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        self.init(baseURL: parsed, token: token, box: SessionBox(session: URLSession(configuration: configuration), owned: true),
                  retry: retry, onRetry: onRetry, sleep: sleep)
    }

    /// Creates a transport over an existing session (which it leaves open).
    public init(baseURL: URL, token: String?, session: URLSession, retry: RetryPolicy = RetryPolicy(),
                onRetry: (@Sendable (RetryNotice) -> Void)? = nil) {
        self.init(baseURL: baseURL, token: token, box: SessionBox(session: session, owned: false), retry: retry,
                  onRetry: onRetry) { seconds in try await Task.sleep(nanoseconds: UInt64(seconds * 1e9)) }
    }

    private init(baseURL: URL, token: String?, box: SessionBox, retry: RetryPolicy,
                 onRetry: (@Sendable (RetryNotice) -> Void)?, sleep: @escaping @Sendable (TimeInterval) async throws -> Void) {
        self.baseURL = baseURL
        let base = baseURL.absoluteString.hasSuffix("/") ? baseURL.absoluteString : baseURL.absoluteString + "/"
        let description = baseURL.absoluteString
        let sendOnce: HTTPSyncTransport.Send = { request in
            guard let url = URL(string: base + request.path) else {
                throw ReaderSyncError.invalidInput("cannot build a URL from \(base) and \(request.path)")
            }
            var urlRequest = URLRequest(url: url)
            urlRequest.httpMethod = request.method
            for (name, value) in request.headers { urlRequest.setValue(value, forHTTPHeaderField: name) }
            let data: Data
            let response: URLResponse
            do {
                if let body = request.body {
                    (data, response) = try await box.session.upload(for: urlRequest, from: body)
                } else {
                    (data, response) = try await box.session.data(for: urlRequest)
                }
            } catch let error as URLError {
                throw ReaderSyncError.transport("cannot reach \(description): \(Self.describe(error))")
            }
            guard let http = response as? HTTPURLResponse else {
                throw ReaderSyncError.transport("\(description) did not answer with HTTP")
            }
            var headers: [String: String] = [:]
            for (name, value) in http.allHeaderFields {
                if let name = name as? String, let value = value as? String { headers[name] = value }
            }
            return SyncHTTPResponse(status: http.statusCode, headers: headers, body: data)
        }
        self.http = HTTPSyncTransport(serverDescription: description, token: token) { request in
            try await Self.send(request, through: sendOnce, retry: retry, onRetry: onRetry, sleep: sleep,
                                server: description)
        }
    }

    /// Sends `request`; while the server answers 429 or 503 with a `Retry-After` the policy accepts, waits that long
    /// and sends it again (a refused push applied nothing, so sending it again is safe).
    ///
    /// - Throws: ``ReaderSyncError/transport(_:)`` when the server still refuses after ``RetryPolicy/maxRetries``
    ///   waits, or asks for a longer wait than ``RetryPolicy/maxDelay``: the server's reason and when to try again.
    static func send(_ request: SyncHTTPRequest, through sendOnce: HTTPSyncTransport.Send, retry: RetryPolicy,
                     onRetry: (@Sendable (RetryNotice) -> Void)?, sleep: @Sendable (TimeInterval) async throws -> Void,
                     server: String) async throws -> SyncHTTPResponse {
        var retries = 0
        while true {
            let response = try await sendOnce(request)
            guard response.status == 429 || response.status == 503,
                  let delay = retryDelay(response.header("Retry-After")) else { return response }
            let detail = (try? JSONDecoder().decode(ProblemDetails.self, from: response.body))?.detail
                ?? "HTTP \(response.status) without a problem report"
            let seconds = Int(delay.rounded(.up))
            guard retries < retry.maxRetries else {
                let tries = retry.maxRetries == 1 ? "1 retry" : "\(retry.maxRetries) retries"
                let refuses = retry.maxRetries == 0 ? "refused" : "still refuses after \(tries)"
                throw ReaderSyncError.server(status: response.status,
                    "\(server) \(refuses) (\(response.status)): \(detail); try again in \(seconds) s")
            }
            guard delay <= retry.maxDelay else {
                throw ReaderSyncError.server(status: response.status,
                    "\(server) refused (\(response.status)): \(detail); it asks to wait \(seconds) s, longer than this client waits (\(Int(retry.maxDelay)) s); try again later")
            }
            retries += 1
            onRetry?(RetryNotice(status: response.status, delay: delay, retry: retries, maxRetries: retry.maxRetries,
                                 detail: detail))
            try await sleep(delay)
        }
    }

    /// The wait a `Retry-After` value asks for, in seconds: delay-seconds or an HTTP date; nil if unreadable.
    static func retryDelay(_ value: String?) -> TimeInterval? {
        guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        if let seconds = Int(value) { return seconds >= 0 ? TimeInterval(seconds) : nil }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: value).map { max(0, $0.timeIntervalSinceNow) }
    }

    /// Who the token belongs to.
    public func account() async throws -> RemoteAccount { try await http.account() }

    /// What the server holds that this account may see.
    public func knowledge() async throws -> Knowledge { try await http.knowledge() }

    /// Sends a bundle.
    public func push(_ bundle: Data) async throws -> PushResponse { try await http.push(bundle) }

    /// Asks for a page of what `knowledge` lacks.
    public func pull(knowledge: Knowledge, maxChanges: Int?) async throws -> PullPage {
        try await http.pull(knowledge: knowledge, maxChanges: maxChanges)
    }

    /// The one-request no-op check; nil from a server that does not offer it.
    public func check(digest: String) async throws -> SyncCheck? { try await http.check(digest: digest) }

    /// Asks for the bodies of articles (`POST /v1/articles/bodies`).
    public func fetchBodies(_ ids: [String]) async throws -> ArticleBodiesAnswer { try await http.fetchBodies(ids) }

    /// One line for a network error.
    static func describe(_ error: URLError) -> String {
        switch error.code {
        case .cannotConnectToHost: return "connection refused (is the server running?)"
        case .timedOut: return "the request timed out"
        case .networkConnectionLost: return "the connection was lost"
        case .cannotFindHost: return "unknown host"
        case .notConnectedToInternet: return "not connected to a network"
        case .cancelled: return "the request was cancelled"
        case .serverCertificateUntrusted, .serverCertificateHasUnknownRoot, .serverCertificateHasBadDate,
             .serverCertificateNotYetValid:
            return "its TLS certificate is not trusted here (\(error.code.rawValue)); add its certificate authority to the system's trust store"
        case .secureConnectionFailed:
            return "the TLS handshake failed (is the server speaking HTTPS, and is its certificate trusted here?)"
        default: return error.localizedDescription.replacingOccurrences(of: "\n", with: " ")
        }
    }
}

/// How a transport answers a server that asks it to retry later (429 or 503 with `Retry-After`).
public struct RetryPolicy: Sendable, Equatable {
    /// Retries of one request at most; 0 never waits.
    public var maxRetries: Int
    /// The longest wait accepted, in seconds; a server asking for more is not waited for.
    public var maxDelay: TimeInterval

    /// Creates a policy; the default waits up to 3 times per request, at most 2 minutes each.
    public init(maxRetries: Int = 3, maxDelay: TimeInterval = 120) {
        self.maxRetries = max(0, maxRetries)
        self.maxDelay = max(0, maxDelay)
    }

    /// Never wait: the first 429 or 503 ends the sync with its reason.
    public static let never = RetryPolicy(maxRetries: 0, maxDelay: 0)
}

/// A wait before a request is sent again, for a progress line: why, how long, which retry.
public struct RetryNotice: Sendable, Equatable {
    /// The status that asked for it (429 or 503).
    public var status: Int
    /// Seconds to wait.
    public var delay: TimeInterval
    /// This retry's number, from 1.
    public var retry: Int
    /// Retries allowed per request.
    public var maxRetries: Int
    /// The server's reason (its problem detail).
    public var detail: String

    /// Creates a notice.
    public init(status: Int, delay: TimeInterval, retry: Int, maxRetries: Int, detail: String) {
        self.status = status
        self.delay = delay
        self.retry = retry
        self.maxRetries = maxRetries
        self.detail = detail
    }
}

/// Holds the session (thread-safe, but not marked `Sendable` on every platform) and invalidates one the
/// transport made once the last copy of the transport is gone.
private final class SessionBox: @unchecked Sendable {
    let session: URLSession
    private let owned: Bool

    init(session: URLSession, owned: Bool) {
        self.session = session
        self.owned = owned
    }

    deinit {
        if owned { session.finishTasksAndInvalidate() }
    }
}
