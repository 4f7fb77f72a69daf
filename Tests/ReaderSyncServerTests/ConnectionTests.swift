import Foundation
import Hummingbird
import HummingbirdTesting
import ReaderSync
import ReaderSyncServer
import Testing

/// Idle, slow and half-sent connections, the connection limit, and requests the HTTP parser refuses.
@Suite("Connections")
struct ConnectionTests {
    /// Short timeouts, so that the in-process tests below finish in a few seconds. Idle is longer than the others,
    /// so that a test client slowed down by a busy machine keeps its connection between two requests.
    static let quick = ConnectionLimits(headerTimeout: .seconds(1), bodyTimeout: .seconds(1), idleTimeout: .seconds(3))

    /// The longest any wait below may take: only an upper bound (each wait ends as soon as its condition holds),
    /// generous because the whole suite runs in parallel on a small machine.
    static let bound = 30.0

    /// The flood of the issue: idle connections, connections that stop half-way through a request head, and
    /// requests whose body stops short of its Content-Length (no token needed for any of them).
    static let floodSize = 5_000

    @Test("5,000 idle and half-sent connections are closed under the default timeouts while a real client syncs")
    func floodIsClosed() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let db = directory.path("server.db")
        let token: String
        do {
            let store = try SQLiteServerStore(path: db)
            token = try await store.addAccount(name: "alice", role: .reader).token
            _ = try await store.importArticles(articles(3))
        }
        // This process holds one descriptor per connection (the server, another process, the other end). If the hard
        // limit is too low for the whole flood, the flood is scaled down to what fits, and says so.
        let limit = raiseOpenFileLimit(to: Self.floodSize + 512)
        let count = min(Self.floodSize, limit - 512)
        if count < Self.floodSize {
            print("flood scaled down to \(count) connections: the hard open-file limit is \(limit)")
        }
        try #require(count >= 1_000, "the open-file limit (\(limit)) leaves too few descriptors for the flood")

        try await withServerProcess(db: db) { server in  // every flag at its default
            let baseline = try #require(openFileCount(pid: server.pid))
            let port = server.port
            let sockets: [RawSocket] = try await offThread {
                try (0..<count).map { index in
                    let socket = try RawSocket(port: port)
                    switch index % 3 {
                    case 1:  // a request head that stops half-way
                        try socket.send("POST /v1/sync/push HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
                    case 2:  // a body shorter than its Content-Length
                        try socket.send("POST /v1/sync/push HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n0123456789")
                    default:  // nothing at all
                        break
                    }
                    return socket
                }
            }
            defer { sockets.forEach { $0.close() } }
            let connected = try #require(openFileCount(pid: server.pid))

            // A real client syncs, both ways, while the flood holds its connections.
            let device = try Replica.inMemory(account: "alice")
            let transport = try URLSessionTransport(url: server.url, token: token)
            let first = try await device.sync(using: transport)
            #expect(first.pulled.changes == 3)
            try await device.markRead("a1")
            try await device.addComment(to: "a2", body: "written during the flood")
            let second = try await device.sync(using: transport)
            #expect(second.pushed.applied == 3)
            let peak = max(connected, try #require(openFileCount(pid: server.pid)))

            // Every connection is closed by the server: none before its timeout could have run out (10 s; the
            // server was holding it, not refusing it), none long after.
            let started = ContinuousClock.now
            let lifetimes = try await offThread { waitUntilClosed(sockets, timeout: 90) }
            let waited = ContinuousClock.now - started
            let closed = lifetimes.compactMap { $0 }
            #expect(closed.count == count, "the server closed \(closed.count) of \(count) connections")
            let shortest = closed.min() ?? 0
            let longest = closed.max() ?? 0
            #expect(shortest >= 9, "a connection was closed after \(shortest) s, before its 10 s timeout")
            #expect(longest <= 60, "a connection stayed open \(longest) s")
            #expect(peak >= baseline + 1_000, "the server never held many connections at once: \(baseline) → \(peak)")
            let after = try #require(openFileCount(pid: server.pid))
            #expect(after <= baseline + 4, "descriptors left open: \(baseline) → \(peak) → \(after)")
            print("""
                flood: \(count) connections (idle, half a head, a short body); server descriptors \(baseline) before, \
                \(peak) at the peak, \(after) after; lifetimes \(String(format: "%.1f", shortest))–\(String(format: "%.1f", longest)) s; \
                all closed \(waited) after the client's sync
                """)
            let dump = try await SQLiteServerStore(path: db).canonicalDump(account: "alice")
            await #expect(dump == (try device.canonicalDump()))
        }
    }

    @Test("A body shorter than its Content-Length is answered 408 with a problem, and the connection closed")
    func stalledBody() async throws {
        let fixture = try await Fixture()
        try await withLiveServer(store: fixture.store, configuration: ServerConfiguration(connections: Self.quick)) { url in
            let port = try #require(URL(string: url)?.port)
            let token = fixture.alice.token
            let started = ContinuousClock.now
            let (data, closed) = try await offThread {
                let socket = try RawSocket(port: port)
                try socket.send("POST /v1/sync/push HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n"
                    + "Content-Type: \(SyncHTTP.bundleMediaType)\r\nContent-Length: 100\r\n\r\n0123456789")
                return socket.readUntilClosed(timeout: Self.bound)
            }
            // Answered, where the flood of the issue got no answer in 25 s.
            #expect(closed)
            #expect(ContinuousClock.now - started < .seconds(25))
            let response = try #require(RawResponse(parsing: data))
            #expect(response.status == 408)
            #expect(response.headers["content-type"] == SyncHTTP.problemMediaType)
            let problem = try JSONDecoder().decode(ProblemDetails.self, from: response.body)
            #expect(problem.type == SyncHTTP.problemTypePrefix + "request-timeout")
            #expect(problem.detail == "the request body stopped arriving: nothing for 1 s after 10 of 100 bytes")
        }
        #expect(try await fixture.store.canonicalDump(account: nil).count > 0)
    }

    @Test("A request head that stops half-way is answered 408 with a problem, and the connection closed")
    func stalledHead() async throws {
        let fixture = try await Fixture()
        try await withLiveServer(store: fixture.store, configuration: ServerConfiguration(connections: Self.quick)) { url in
            let port = try #require(URL(string: url)?.port)
            let (data, closed) = try await offThread {
                let socket = try RawSocket(port: port)
                try socket.send("GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nAcc")
                return socket.readUntilClosed(timeout: Self.bound)
            }
            #expect(closed)
            let response = try #require(RawResponse(parsing: data))
            #expect(response.status == 408)
            let problem = try JSONDecoder().decode(ProblemDetails.self, from: response.body)
            #expect(problem.detail == "the request head did not arrive in full within 1 s")
        }
    }

    @Test("An idle connection is closed without an answer; one in use is kept alive between its requests")
    func idleAndKeepAlive() async throws {
        let fixture = try await Fixture()
        try await withLiveServer(store: fixture.store, configuration: ServerConfiguration(connections: Self.quick)) { url in
            let port = try #require(URL(string: url)?.port)
            let idle = try await offThread {
                try RawSocket(port: port).readUntilClosed(timeout: Self.bound)
            }
            #expect(idle.closed)
            #expect(idle.data.isEmpty)

            let (first, second, closedAfter) = try await offThread {
                let socket = try RawSocket(port: port)
                let request = "GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                try socket.send(request)
                let first = try socket.readResponse(timeout: Self.bound)
                try socket.send(request)
                let second = try socket.readResponse(timeout: Self.bound)
                return (first.status, second.status, socket.readUntilClosed(timeout: Self.bound).closed)
            }
            #expect(first == 200 && second == 200)
            #expect(closedAfter)
        }
    }

    @Test("At the connection limit, a new connection waits until one closes, then is served")
    func connectionLimit() async throws {
        let fixture = try await Fixture()
        var limits = Self.quick
        limits.maxConnections = 2
        try await withLiveServer(store: fixture.store, configuration: ServerConfiguration(connections: limits)) { url in
            let port = try #require(URL(string: url)?.port)
            let (status, heldWereClosed) = try await offThread {
                let request = "GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                // Two connections, each answered once (so both are surely accepted), then left idle.
                let held = try (0..<2).map { _ in
                    let socket = try RawSocket(port: port)
                    try socket.send(request)
                    _ = try socket.readResponse(timeout: Self.bound)
                    return socket
                }
                let third = try RawSocket(port: port)
                try third.send(request)
                let response = try third.readResponse(timeout: Self.bound)
                return (response.status, held.map { $0.isClosedByPeer() })
            }
            #expect(status == 200)
            // The third connection was only accepted once an idle one had been closed.
            #expect(heldWereClosed.contains(true))
        }
    }

    @Test("An oversized request head is answered 431 with a problem; a malformed request 400 with a problem")
    func parserErrors() async throws {
        let fixture = try await Fixture()
        try await withLiveServer(store: fixture.store, configuration: ServerConfiguration()) { url in
            let port = try #require(URL(string: url)?.port)
            let oversized = "GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: \(String(repeating: "a", count: 20_000))\r\n\r\n"
            let garbage = "HELLO\u{1}WORLD /v1/health HTTP/1.1\r\n\r\n"
            for (request, status, slug) in [(oversized, 431, "header-too-large"), (garbage, 400, "invalid-request")] {
                let (data, closed) = try await offThread {
                    let socket = try RawSocket(port: port)
                    try socket.send(request)
                    return socket.readUntilClosed(timeout: Self.bound)
                }
                #expect(closed)
                let response = try #require(RawResponse(parsing: data))
                #expect(response.status == status)
                #expect(response.headers["content-type"] == SyncHTTP.problemMediaType)
                let problem = try JSONDecoder().decode(ProblemDetails.self, from: response.body)
                #expect(problem.type == SyncHTTP.problemTypePrefix + slug)
                #expect(problem.status == status)
                #expect(!problem.detail.isEmpty)
            }
        }
    }
}
