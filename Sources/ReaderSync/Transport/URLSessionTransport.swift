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
/// rejected; a 403 becomes ``ReaderSyncError/forbidden(_:)``.
public struct URLSessionTransport: SyncTransport {
    /// The server's base URL (paths such as `v1/sync/push` are resolved below it).
    public let baseURL: URL
    private let http: HTTPSyncTransport

    /// Creates a transport for the server at `url` (`http://` or `https://`, optionally with a path prefix).
    ///
    /// - Parameters:
    ///   - timeout: seconds a request may wait for data before it fails.
    /// - Throws: ``ReaderSyncError/invalidInput(_:)`` for a URL that is not http(s).
    public init(url: String, token: String?, timeout: TimeInterval = 60) throws {
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(),
              scheme == "http" || scheme == "https", parsed.host != nil else {
            throw ReaderSyncError.invalidInput("'\(url)' is not a server URL such as http://127.0.0.1:8080")
        }
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        self.init(baseURL: parsed, token: token, box: SessionBox(session: URLSession(configuration: configuration), owned: true))
    }

    /// Creates a transport over an existing session (which it leaves open).
    public init(baseURL: URL, token: String?, session: URLSession) {
        self.init(baseURL: baseURL, token: token, box: SessionBox(session: session, owned: false))
    }

    private init(baseURL: URL, token: String?, box: SessionBox) {
        self.baseURL = baseURL
        let base = baseURL.absoluteString.hasSuffix("/") ? baseURL.absoluteString : baseURL.absoluteString + "/"
        let description = baseURL.absoluteString
        self.http = HTTPSyncTransport(serverDescription: description, token: token) { request in
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

    /// One line for a network error.
    static func describe(_ error: URLError) -> String {
        switch error.code {
        case .cannotConnectToHost: return "connection refused (is the server running?)"
        case .timedOut: return "the request timed out"
        case .networkConnectionLost: return "the connection was lost"
        case .cannotFindHost: return "unknown host"
        case .notConnectedToInternet: return "not connected to a network"
        case .cancelled: return "the request was cancelled"
        default: return error.localizedDescription.replacingOccurrences(of: "\n", with: " ")
        }
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
