import Dispatch
import Foundation
import Synchronization
import Testing
@testable import ReaderSync

/// The async API: each call runs off the cooperative pool, and cancelling the calling task stops a long
/// apply, export or import between blocks and leaves the replica exactly as before.
@Suite("Async API and cancellation")
struct AsyncAPITests {
    /// An editor's replica with `count` articles and a fresh reader replica, with a bundle of everything.
    private static func setUp(_ dir: TempDir, count: Int) throws -> (editor: Replica, reader: Replica, bundle: URL) {
        let editor = try Replica.create(at: dir.path("editor.db"), account: "editor")
        try editor.upsertArticles((0..<count).map { sampleArticle(String(format: "a%05d", $0), title: "Story \($0)") })
        let reader = try Replica.create(at: dir.path("reader.db"), account: "reader")
        let bundle = dir.url.appendingPathComponent("all.bundle")
        try editor.exportBundle(to: bundle, for: Knowledge(), account: "reader")
        return (editor, reader, bundle)
    }

    /// Everything a replica holds that an operation could change: its dump, its knowledge and its change log.
    private struct Snapshot: Equatable {
        var dump: String
        var knowledge: Knowledge
        var log: [String]
    }

    private static func snapshot(_ replica: Replica) throws -> Snapshot {
        Snapshot(dump: try dumpString(replica), knowledge: try replica.knowledge(),
                 log: try replica.changeLog(limit: Int.max).map { "\($0)" })
    }

    /// A progress handler that, once `threshold` items are done, tells the test and then waits (on the worker
    /// thread, not a task) until the test has cancelled the task.
    private final class Gate: Sendable {
        let threshold: Int
        let reached: AsyncStream<Void>
        private let continuation: AsyncStream<Void>.Continuation
        private let release = DispatchSemaphore(value: 0)
        private let fired = Mutex(false)

        init(threshold: Int) {
            self.threshold = threshold
            (reached, continuation) = AsyncStream<Void>.makeStream()
        }

        var handler: ProgressHandler {
            { [self] progress in
                guard !progress.isComplete, progress.completed >= threshold,
                      fired.withLock({ done in defer { done = true }; return !done }) else { return }
                continuation.yield()
                release.wait()
            }
        }

        func open() { release.signal() }

        /// Waits until the handler fired, cancels `task`, lets the work go on, and returns how the task ended.
        func cancel<T: Sendable>(_ task: Task<T, any Error>) async -> Result<T, any Error> {
            var iterator = reached.makeAsyncIterator()
            _ = await iterator.next()
            task.cancel()
            open()
            return await task.result
        }
    }

    @Test("a cancelled apply leaves the replica exactly as before")
    func cancelledApply() async throws {
        let dir = TempDir()
        let (_, reader, bundle) = try Self.setUp(dir, count: 3_000)
        let before = try Self.snapshot(reader)
        let gate = Gate(threshold: 1_000)
        let task = Task { try await reader.applyBundle(at: bundle, progress: gate.handler) }
        let result = await gate.cancel(task)
        #expect(throws: CancellationError.self) { try result.get() }
        #expect(try Self.snapshot(reader) == before)
        await #expect(try reader.feed().isEmpty)
        // Nothing is left half-done: the same bundle applies whole afterwards.
        let applied = try await reader.applyBundle(at: bundle)
        #expect(applied.applied == 3_000)
        #expect(try await reader.feed(FeedQuery(limit: 10_000)).count == 3_000)
    }

    @Test("a cancelled export writes no file and changes nothing")
    func cancelledExport() async throws {
        let dir = TempDir()
        let (editor, _, _) = try Self.setUp(dir, count: 3_000)
        let before = try Self.snapshot(editor)
        let target = dir.url.appendingPathComponent("cancelled.bundle")
        let gate = Gate(threshold: 1_000)
        let task = Task {
            try await editor.exportBundle(to: target, for: Knowledge(), account: "reader", progress: gate.handler)
        }
        let result = await gate.cancel(task)
        #expect(throws: CancellationError.self) { try result.get() }
        #expect(!FileManager.default.fileExists(atPath: target.path))
        #expect(try Self.snapshot(editor) == before)
    }

    @Test("a cancelled replica-to-replica sync leaves the receiving side as before")
    func cancelledSync() async throws {
        let dir = TempDir()
        let (editor, reader, _) = try Self.setUp(dir, count: 3_000)
        let before = try Self.snapshot(reader)
        let gate = Gate(threshold: 1_000)
        // The reader has nothing to send; the editor's 3,000 articles are being applied when the task is cancelled.
        let task = Task { try await reader.sync(with: editor, progress: { step in
            if step.phase == .applying { gate.handler(step) }
        }) }
        let result = await gate.cancel(task)
        #expect(throws: CancellationError.self) { try result.get() }
        #expect(try Self.snapshot(reader) == before)
        let report = try await reader.sync(with: editor)
        #expect(report.received.applied == 3_000)
    }

    @Test("a cancelled import rolls back whole")
    func cancelledImport() async throws {
        let dir = TempDir()
        let editor = try Replica.create(at: dir.path("editor.db"), account: "editor")
        let file = dir.url.appendingPathComponent("articles.json")
        let lines = (0..<2_000).map { #"{"id": "i\#($0)", "source": "Source", "title": "Story \#($0)", "body": "Body"}"# }
        try Data(lines.joined(separator: "\n").utf8).write(to: file)
        let before = try Self.snapshot(editor)
        let gate = Gate(threshold: 500)
        let task = Task { try await editor.importArticles(contentsOf: file, progress: gate.handler) }
        let result = await gate.cancel(task)
        #expect(throws: CancellationError.self) { try result.get() }
        #expect(try Self.snapshot(editor) == before)
        let summary = try await editor.importArticles(contentsOf: file)
        #expect(summary.articles == 2_000)
    }

    @Test("a call made by a cancelled task does not start")
    func cancelledBeforeStart() async throws {
        let replica = try Replica.inMemory(account: "alice")
        try await replica.upsertArticles([sampleArticle("a1")])
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            try await replica.markRead("a1")
        }
        await #expect(throws: CancellationError.self) { try await task.value }
        await #expect(try replica.readState(of: "a1").readAt == nil)
        await #expect(try replica.changeLog(limit: 100).count == 1)  // the article only
    }

    @Test("async calls do the same as the synchronous ones")
    func sameResults() async throws {
        let alice = try Replica.inMemory(account: "alice")
        try await alice.upsertArticles(try fixtureArticles())
        let first = try #require(try await alice.feed().first)
        try await alice.markRead(first.article.id)
        try await alice.setProgress(first.article.id, 0.5)
        try await alice.save(first.article.id)
        let comment = try await alice.addComment(to: first.article.id, body: "first")
        try await alice.editComment(comment.id, body: "edited")
        let bob = try Replica.inMemory(account: "alice")
        try await bob.sync(with: alice)
        #expect(try await bob.canonicalDump() == alice.canonicalDump())
        #expect(try await bob.readState(of: first.article.id).progress == 0.5)
        #expect(try await bob.comment(comment.id).body == "edited")
        #expect(try await alice.status() == alice.status())
    }
}

@Suite("Errors carry their codes")
struct ErrorCodeTests {
    private static func transport(status: Int, detail: String) -> HTTPSyncTransport {
        HTTPSyncTransport(serverDescription: "test-server", token: "rst_token") { _ in
            let body = try JSONEncoder().encode(ProblemDetails(type: SyncHTTP.problemTypePrefix + "x", title: "x",
                                                               status: status, detail: detail, comment: nil))
            return SyncHTTPResponse(status: status, headers: ["Content-Type": SyncHTTP.problemMediaType], body: body)
        }
    }

    @Test("an HTTP error answer is .server with its status", arguments: [401, 403, 413, 500, 503])
    func httpStatus(status: Int) async throws {
        let replica = try Replica.inMemory(account: "alice")
        do {
            _ = try await replica.sync(using: Self.transport(status: status, detail: "refused for the test"))
            Issue.record("the sync succeeded against a server answering \(status)")
        } catch let error as ReaderSyncError {
            #expect(error.httpStatus == status)
            guard case .server(let code, let message) = error else {
                Issue.record("expected .server, got \(error)")
                return
            }
            #expect(code == status)
            #expect(message.contains("refused for the test") || message.contains("\(status)"))
        }
    }

    @Test("the scheduler stops on a 4xx and retries a 5xx, a 408 and a 429")
    func schedulerClassifiesStatuses() {
        for status in [400, 401, 403, 404, 413] {
            #expect(SyncScheduler<ContinuousClock>.isPermanent(ReaderSyncError.server(status: status, "x")))
        }
        for status in [408, 429, 500, 502, 503] {
            #expect(!SyncScheduler<ContinuousClock>.isPermanent(ReaderSyncError.server(status: status, "x")))
        }
        #expect(!SyncScheduler<ContinuousClock>.isPermanent(ReaderSyncError.transport("cannot reach the server")))
    }

    @Test("storage errors keep the SQLite result code")
    func sqliteCodes() {
        #expect(ReaderSyncError.busy("write: database is locked [SQLite 5]").sqliteResultCode == 5)
        #expect(ReaderSyncError.diskFull("write: database or disk is full [SQLite 13]").sqliteResultCode == 13)
        #expect(ReaderSyncError.corrupt("open: file is not a database [SQLite 26]").sqliteResultCode == 26)
        #expect(ReaderSyncError.transport("x").sqliteResultCode == nil && ReaderSyncError.transport("x").httpStatus == nil)
    }
}
