import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import ReaderSync
import ReaderSyncServer
import Testing

// MARK: - Fixtures

/// A small article.
func article(_ id: String, updated: Int = 0, source: String = "Wire") -> Article {
    Article(id: id, source: source, title: "Title of \(id)", body: "Body of \(id), version \(updated)",
            topics: ["news"], publishedAt: Date(timeIntervalSince1970: 1_750_000_000 + Double(updated)),
            updatedAt: Date(timeIntervalSince1970: 1_750_000_000 + Double(updated)))
}

/// Articles a1...aN.
func articles(_ count: Int) -> [Article] {
    (1...count).map { article("a\($0)") }
}

/// A logger that keeps test output quiet.
let quietLogger: Logger = {
    var logger = Logger(label: "readersync-server-tests")
    logger.logLevel = .critical
    return logger
}()

/// A store with `alice` (reader) and `bob` (editor) and some articles.
struct Fixture {
    let store: SQLiteServerStore
    let alice: NewAccount
    let bob: NewAccount

    init(articleCount: Int = 3, store: SQLiteServerStore? = nil) async throws {
        self.store = try store ?? SQLiteServerStore.inMemory()
        alice = try await self.store.addAccount(name: "alice", role: .reader)
        bob = try await self.store.addAccount(name: "bob", role: .editor)
        if articleCount > 0 { _ = try await self.store.importArticles(articles(articleCount)) }
    }

    /// The application under test.
    func app(maxBodyBytes: Int = 32 << 20) throws -> some ApplicationProtocol {
        try app(ServerConfiguration(host: "127.0.0.1", port: 0, maxBodyBytes: maxBodyBytes))
    }

    /// The application under test, with `configuration`.
    func app(_ configuration: ServerConfiguration) throws -> some ApplicationProtocol {
        try buildApplication(configuration: configuration, store: store, logger: quietLogger)
    }
}

/// A temporary directory removed when the value is released by `cleanUp()`.
struct TemporaryDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("readersync-server-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    func cleanUp() { try? FileManager.default.removeItem(at: url) }
}

// MARK: - HTTP helpers

/// Header fields from name/value pairs.
func fields(_ pairs: [String: String]) -> HTTPFields {
    var result = HTTPFields()
    for (name, value) in pairs {
        if let name = HTTPFields.Element.Name(name) { result[name] = value }
    }
    return result
}

/// `Authorization: Bearer token` plus `extra`.
func auth(_ token: String, _ extra: [String: String] = [:]) -> HTTPFields {
    fields(extra.merging(["Authorization": "Bearer \(token)"]) { a, _ in a })
}

extension TestResponse {
    /// The body as Data.
    var data: Data { Data(body.readableBytesView) }

    /// A header by name.
    func header(_ name: String) -> String? {
        HTTPFields.Element.Name(name).flatMap { headers[$0] }
    }
}

/// Checks that `response` is a problem report with `status` (and `slug`, if given); returns it.
@discardableResult
func expectProblem(_ response: TestResponse, _ status: Int, slug: String? = nil,
                   sourceLocation: SourceLocation = #_sourceLocation) throws -> ProblemDetails {
    #expect(response.status.code == status, "status", sourceLocation: sourceLocation)
    #expect(SyncHTTP.mediaType(response.header("Content-Type")) == SyncHTTP.problemMediaType,
            "content type", sourceLocation: sourceLocation)
    let problem = try JSONDecoder().decode(ProblemDetails.self, from: response.data)
    #expect(problem.status == status, sourceLocation: sourceLocation)
    #expect(problem.type.hasPrefix(SyncHTTP.problemTypePrefix), sourceLocation: sourceLocation)
    if let slug { #expect(problem.type == SyncHTTP.problemTypePrefix + slug, sourceLocation: sourceLocation) }
    #expect(!problem.title.isEmpty && !problem.detail.isEmpty, sourceLocation: sourceLocation)
    return problem
}

/// The sync protocol over the router test client: the same encoding as ``URLSessionTransport``, no sockets.
func routerTransport(_ client: any TestClientProtocol, token: String?) -> HTTPSyncTransport {
    HTTPSyncTransport(serverDescription: "test-router", token: token) { request in
        let response = try await client.executeRequest(
            uri: "/" + request.path, method: request.method == "POST" ? .post : .get,
            headers: fields(request.headers), body: request.body.map { ByteBuffer(bytes: $0) })
        var headers: [String: String] = [:]
        for field in response.headers { headers[field.name.canonicalName] = field.value }
        return SyncHTTPResponse(status: response.status.code, headers: headers, body: response.data)
    }
}

/// A transport that fails every call after `failAfterPulls` pulls, as a dropped connection would.
final class FlakyTransport: SyncTransport, @unchecked Sendable {
    let base: any SyncTransport
    private let lock = NSLock()
    private var pulls = 0
    private let failAfterPulls: Int

    init(_ base: any SyncTransport, failAfterPulls: Int) {
        self.base = base
        self.failAfterPulls = failAfterPulls
    }

    func account() async throws -> RemoteAccount { try await base.account() }
    func knowledge() async throws -> Knowledge { try await base.knowledge() }
    func push(_ bundle: Data) async throws -> PushResponse { try await base.push(bundle) }
    func pull(knowledge: Knowledge, maxChanges: Int?) async throws -> PullPage {
        let count = lock.withLock { pulls += 1; return pulls }
        if count > failAfterPulls { throw ReaderSyncError.transport("connection dropped (simulated)") }
        return try await base.pull(knowledge: knowledge, maxChanges: maxChanges)
    }
}

// MARK: - Live server

/// Runs the application on a real socket (127.0.0.1, a free port) while `body` runs, then stops it.
func withLiveServer<T: Sendable>(store: any ServerStore, maxBodyBytes: Int = 32 << 20,
                                 _ body: @Sendable (_ url: String) async throws -> T) async throws -> T {
    try await withLiveServer(store: store, configuration: ServerConfiguration(maxBodyBytes: maxBodyBytes), body)
}

/// Runs the application with `configuration` (its host and port replaced by 127.0.0.1 and a free port) on a real
/// socket while `body` runs, then stops it. `body` gets the base URL (`http://` or `https://`).
func withLiveServer<T: Sendable>(store: any ServerStore, configuration: ServerConfiguration,
                                 _ body: @Sendable (_ url: String) async throws -> T) async throws -> T {
    var configuration = configuration
    configuration.host = "127.0.0.1"
    configuration.port = 0
    let scheme = configuration.scheme
    let (ports, continuation) = AsyncStream<Int>.makeStream()
    let app = try buildApplication(configuration: configuration, store: store, logger: quietLogger) { _, port in
        continuation.yield(port)
        continuation.finish()
    }
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await app.run() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            group.cancelAll()
            throw ReaderSyncError.transport("the test server did not start")
        }
        do {
            let result = try await body("\(scheme)://127.0.0.1:\(port)")
            group.cancelAll()
            return result
        } catch {
            group.cancelAll()
            throw error
        }
    }
}

// MARK: - Dumps

/// The parts of a canonical dump.
struct DumpParts: Equatable {
    var articles: String
    var comments: String
    var readStates: [[String: String]]

    init(_ data: Data) throws {
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        func canonical(_ value: Any?) throws -> String {
            String(decoding: try JSONSerialization.data(withJSONObject: value ?? NSNull(), options: [.sortedKeys]), as: UTF8.self)
        }
        articles = try canonical(object["articles"])
        comments = try canonical(object["comments"])
        let states = object["readStates"] as? [[String: Any]] ?? []
        readStates = states.map { state in
            ["account": state["account"] as? String ?? "?", "article": state["article"] as? String ?? "?"]
        }
    }

    /// The accounts whose read state the dump holds.
    var readStateAccounts: Set<String> { Set(readStates.compactMap { $0["account"] }) }
}
