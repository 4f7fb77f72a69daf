// 4. Initial sync of many articles into an empty replica: (a) replica to replica, (b) through the reference server
// on 127.0.0.1. The receiving side runs in a fresh child process, so its peak memory (VmHWM) is its own.
import Foundation
import GRDB
import Hummingbird
import Logging
import ReaderSync
import ReaderSyncServer

// MARK: - Child modes

enum SyncChild {
    /// A process that only creates an empty replica: the memory baseline.
    static func empty(dir: String) throws {
        let replica = try Replica.create(at: dir + "/empty.db", account: "reader")
        _ = try replica.knowledge()
        childResult(["peak": Double(peakRSS())])
    }

    /// A fresh replica of `reader` syncs with the replica file at `source`.
    static func replicaToReplica(source: String, dir: String) throws {
        let peer = try Replica.open(at: source)
        let reader = try Replica.create(at: dir + "/reader-r2r.db", account: "reader")
        var report: SyncReport?
        let seconds = try measure { report = try reader.sync(with: peer) }
        childResult(["seconds": seconds, "peak": Double(peakRSS()), "changes": Double(report?.received.applied ?? 0)])
    }

    /// A fresh replica of `reader` syncs with the server at `url`.
    static func server(url: String, token: String, dir: String) async throws {
        let reader = try Replica.create(at: dir + "/reader-server.db", account: "reader")
        let transport = try URLSessionTransport(url: url, token: token, timeout: 600)
        var report: ServerSyncReport?
        let seconds = try await measureAsync { report = try await reader.sync(using: transport) }
        childResult(["seconds": seconds, "peak": Double(peakRSS()), "changes": Double(report?.pulled.applied ?? 0),
                     "pages": Double(report?.pulled.pages ?? 0)])
    }

    /// The baseline: the same article rows, inserted with one prepared statement in one transaction.
    static func baselineInsert(count: Int, seed: UInt64, dir: String) throws {
        let articles = (0..<count).map { Articles.make($0, seed: seed, bodyBytes: 2_048...4_096) }
        let pool = try DatabasePool(path: dir + "/plain-articles.db")
        try pool.write { db in
            try db.execute(sql: """
                CREATE TABLE article (key TEXT NOT NULL UNIQUE, source TEXT, url TEXT, title TEXT, byline TEXT, body TEXT,
                                      topics TEXT, related TEXT, published_at INTEGER, updated_at INTEGER)
                """)
        }
        let seconds = try measure {
            try pool.write { db in
                let insert = try db.makeStatement(sql: """
                    INSERT INTO article (key, source, url, title, byline, body, topics, related, published_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """)
                for a in articles {
                    try insert.execute(arguments: [
                        a.id, a.source, a.url, a.title, a.byline, a.body, a.topics.joined(separator: ","),
                        a.related.joined(separator: ","),
                        a.publishedAt.map { Int64($0.timeIntervalSince1970 * 1000) },
                        a.updatedAt.map { Int64($0.timeIntervalSince1970 * 1000) },
                    ])
                }
            }
        }
        childResult(["seconds": seconds, "peak": Double(peakRSS())])
    }
}

// MARK: - The in-process server

struct RunningServer {
    var url: String
    var task: Task<Void, any Error>

    static func start(store: SQLiteServerStore) async throws -> RunningServer {
        var logger = Logger(label: "readersync-bench-server")
        logger.logLevel = .critical  // cancelling the service at the end logs errors about the closed channel
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let configuration = ServerConfiguration(host: "127.0.0.1", port: 0, pushLimits: .unlimited)
        let app = try buildApplication(configuration: configuration, store: store, logger: logger) { _, port in
            continuation.yield(port)
        }
        let task = Task { try await app.runService(gracefulShutdownSignals: []) }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw BenchError("the server did not start") }
        return RunningServer(url: "http://127.0.0.1:\(port)", task: task)
    }

    func stop() async {
        task.cancel()
        try? await Task.sleep(nanoseconds: 200_000_000)
    }
}

// MARK: - The benchmark

func benchInitialSync(_ options: Options) async throws -> [Figure] {
    let sizes = options.quick ? [1_000] : [10_000, 100_000]
    var figures: [Figure] = []
    let emptyDir = try TempDir("empty")
    defer { emptyDir.cleanUp() }
    let emptyPeak = try runChild(["--child-empty", emptyDir.url.path])["peak"] ?? 0
    say(String(format: "initial sync: a process that creates an empty replica peaks at %.1f MB", emptyPeak / 1e6))
    for size in sizes {
        let dir = try TempDir("sync-\(size)")
        defer { dir.cleanUp() }
        let label = "\(size / 1_000)k"
        let headline = size == 100_000

        // The editor's replica holds the articles.
        let sourcePath = dir.path("editor.db")
        let source = try Replica.create(at: sourcePath, account: "editor")
        let publishSeconds = try measure {
            try publish(source, count: size, seed: options.seed, bodyBytes: 2_048...4_096)
        }
        let sourceBytes = fileSize(sourcePath) + fileSize(sourcePath + "-wal")
        say("initial sync \(label): " + String(format: "editor replica built in %.1f s (%.0f MiB)", publishSeconds, mib(sourceBytes)))

        let baseline = try runChild(["--child-baseline-articles", "\(size)", "\(options.seed)", dir.url.path])
        let baselineSeconds = baseline["seconds"] ?? .nan
        say("initial sync \(label): " + String(format: "baseline insert %.2f s", baselineSeconds))

        // (a) Replica to replica.
        let r2r = try runChild(["--child-r2r", sourcePath, dir.url.path])
        let r2rSeconds = r2r["seconds"] ?? .nan
        let r2rPeak = r2r["peak"] ?? .nan
        say("initial sync \(label) replica to replica: " + String(format: "%.2f s, peak %.1f MB, %.0f changes", r2rSeconds,
                                                                 r2rPeak / 1e6, r2r["changes"] ?? 0))
        try? FileManager.default.removeItem(atPath: dir.path("reader-r2r.db"))
        try? FileManager.default.removeItem(atPath: dir.path("reader-r2r.db-wal"))

        // (b) Through the server: the editor pushes, then a fresh reader replica pulls.
        let store = try SQLiteServerStore(path: dir.path("server.db"))
        let editor = try await store.addAccount(name: "editor", role: .editor)
        let reader = try await store.addAccount(name: "reader", role: .reader)
        let server = try await RunningServer.start(store: store)
        let pushSeconds = try await measureAsync {
            let report = try await source.sync(using: URLSessionTransport(url: server.url, token: editor.token, timeout: 600))
            if report.pushed.applied != size { say("note: the editor pushed \(report.pushed.applied) of \(size) articles") }
        }
        say("initial sync \(label): " + String(format: "the editor pushed to the server in %.1f s", pushSeconds))
        let viaServer = try runChild(["--child-server", server.url, reader.token, dir.url.path])
        await server.stop()
        let serverSeconds = viaServer["seconds"] ?? .nan
        let serverPeak = viaServer["peak"] ?? .nan
        say("initial sync \(label) via server: " + String(format: "%.2f s, peak %.1f MB, %.0f changes in %.0f pages", serverSeconds,
                                                              serverPeak / 1e6, viaServer["changes"] ?? 0, viaServer["pages"] ?? 0))

        for (kind, name, seconds, peak, note) in [
            ("r2r", "replica to replica", r2rSeconds, r2rPeak,
             "Replica.sync(with:) in a child process that opens the editor's replica file and creates the reader's; its peak includes the exporting side"),
            ("server", "via server", serverSeconds, serverPeak,
             "a fresh reader replica pulls through URLSessionTransport from the in-process reference server (SQLiteServerStore file) on 127.0.0.1; the server's work runs in the parent process"),
        ] {
            figures.append(Figure(
                id: "initial-sync-\(kind)-\(label)-seconds", name: "4\(kind == "r2r" ? "a" : "b") initial sync \(label) \(name): time",
                value: seconds, unit: "s", baseline: baselineSeconds, baselineUnit: "s",
                baselineDescription: "plain GRDB INSERT of the same \(size) article rows into one table (key UNIQUE) in one transaction, file DB (WAL), in a child process",
                ratio: seconds / baselineSeconds, ratioNote: "sync time / insert time",
                target: headline ? "<= 15 s" : nil, meetsTarget: headline ? seconds <= 15 : nil,
                notes: "\(note); articles of 2-4 KB bodies; the editor's replica took \(String(format: "%.1f", publishSeconds)) s to build and \(String(format: "%.1f", pushSeconds)) s to push to the server"))
            figures.append(Figure(
                id: "initial-sync-\(kind)-\(label)-peak", name: "4\(kind == "r2r" ? "a" : "b") initial sync \(label) \(name): peak RSS",
                value: peak / 1e6, unit: "MB", baseline: emptyPeak / 1e6, baselineUnit: "MB",
                baselineDescription: "peak RSS (VmHWM) of a fresh process that only creates an empty replica",
                ratio: peak / emptyPeak, ratioNote: "peak / empty-process peak",
                target: headline ? "<= 150 MB" : nil, meetsTarget: headline ? peak <= 150_000_000 : nil,
                notes: nil))
        }
    }
    return figures
}
