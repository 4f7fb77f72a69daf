import Dispatch
import Foundation
import ReaderSync
import ReaderSyncServer
import Testing

/// The built `readersync-server` binary: account administration, import, serve, and graceful shutdown.
@Suite("readersync-server executable")
struct ExecutableTests {
    /// The binary, beside the test bundle in the build directory.
    static func binary() throws -> URL {
        var candidates = [URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()]
        candidates += Bundle.allBundles.map { $0.bundleURL.deletingLastPathComponent() }
        for directory in candidates {
            let url = directory.appendingPathComponent("readersync-server")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        throw ReaderSyncError.notFound("readersync-server is not built next to the tests (looked in \(candidates.map(\.path)))")
    }

    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs the binary to completion.
    static func run(_ arguments: [String]) async throws -> Output {
        let process = Process()
        process.executableURL = try binary()
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        async let stdout = readAll(out.fileHandleForReading)
        async let stderr = readAll(err.fileHandleForReading)
        let (o, e) = await (stdout, stderr)
        await waitForExit(process)
        return Output(status: process.terminationStatus, stdout: o, stderr: e)
    }

    static func readAll(_ handle: FileHandle) async -> String {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(returning: String(decoding: handle.readDataToEndOfFile(), as: UTF8.self))
            }
        }
    }

    /// Reads until a full line arrives (or the pipe closes).
    static func readLine(_ handle: FileHandle) async -> String? {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                var buffer = Data()
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty { break }
                    buffer.append(chunk)
                    if buffer.contains(0x0A) { break }
                }
                let line = String(decoding: buffer, as: UTF8.self).split(separator: "\n").first.map(String.init)
                continuation.resume(returning: line)
            }
        }
    }

    static func waitForExit(_ process: Process) async {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                process.waitUntilExit()
                continuation.resume()
            }
        }
    }

    @Test("account add, list, revoke, and import")
    func administration() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let db = directory.path("server.db")

        let added = try await Self.run(["account", "add", "alice", "--db", db])
        #expect(added.status == 0)
        let token = try #require(added.stdout.split(whereSeparator: \.isWhitespace).last.map(String.init))
        #expect(token.hasPrefix("rst_"))
        #expect(try await SQLiteServerStore(path: db).authenticate(token: token)?.name == "alice")

        let editor = try await Self.run(["account", "add", "bob", "--role", "editor", "--db", db])
        #expect(editor.status == 0)
        let again = try await Self.run(["account", "add", "alice", "--db", db])
        #expect(again.status == 1)
        #expect(again.stderr == "readersync-server: error: account 'alice' already exists\n")
        let badRole = try await Self.run(["account", "add", "carol", "--role", "admin", "--db", db])
        #expect(badRole.status == 64)

        let list = try await Self.run(["account", "list", "--db", db])
        #expect(list.stdout == "alice  reader  active\nbob    editor  active\n")

        let revoke = try await Self.run(["account", "revoke", "alice", "--db", db])
        #expect(revoke.stdout == "revoked account alice\n")
        #expect(try await SQLiteServerStore(path: db).authenticate(token: token) == nil)
        let unknown = try await Self.run(["account", "revoke", "nobody", "--db", db])
        #expect(unknown.status == 1)

        let file = directory.path("articles.jsonl")
        let lines = [
            #"{"id": "x1", "source": "Wire", "title": "One", "body": "First"}"#,
            #"{"id": "x2", "source": "Wire", "title": "Two", "body": ["Para 1", "Para 2"]}"#,
        ]
        try lines.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let imported = try await Self.run(["import", file, "--db", db])
        #expect(imported.stdout == "imported 2 articles: 2 new, 0 updated, 0 unchanged\n")
        let dump = String(decoding: try await SQLiteServerStore(path: db).canonicalDump(account: nil), as: UTF8.self)
        #expect(dump.contains("\"x2\""))

        try #"{"id": "x3"}"#.write(toFile: file, atomically: true, encoding: .utf8)
        let invalid = try await Self.run(["import", file, "--db", db])
        #expect(invalid.status == 1)
        #expect(invalid.stderr.contains("line 1"))

        let noStore = try await Self.run(["account", "list"])
        #expect(noStore.status == 64)
    }

    @Test("serve on port 0 prints its address, syncs, and stops cleanly on a signal, keeping acknowledged pushes",
          arguments: [SIGTERM, SIGINT])
    func serveAndStop(_ signal: Int32) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let db = directory.path("server.db")
        let token = try await SQLiteServerStore(path: db).addAccount(name: "alice", role: .reader).token
        _ = try await SQLiteServerStore(path: db).importArticles(articles(3))

        let process = Process()
        process.executableURL = try Self.binary()
        process.arguments = ["serve", "--db", db, "--port", "0", "--log-level", "warning"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let line = await Self.readLine(out.fileHandleForReading)
        let prefix = "listening on http://127.0.0.1:"
        guard let line, line.hasPrefix(prefix), let port = Int(line.dropFirst(prefix.count)) else {
            process.terminate()
            await Self.waitForExit(process)
            Issue.record("unexpected first line: \(line ?? "none")")
            return
        }
        #expect(port > 0)

        let device = try Replica.inMemory(account: "alice")
        let transport = try URLSessionTransport(url: "http://127.0.0.1:\(port)", token: token)
        _ = try await device.sync(using: transport)
        try await device.markRead("a1")
        try await device.addComment(to: "a2", body: "kept after shutdown")
        let report = try await device.sync(using: transport)
        #expect(report.pushed.applied == 3)

        kill(process.processIdentifier, signal)
        await Self.waitForExit(process)
        #expect(process.terminationReason == .exit)
        #expect(process.terminationStatus == 0)

        let store = try SQLiteServerStore(path: db)
        #expect(try await store.canonicalDump(account: "alice") == (try device.canonicalDump()))
    }
}
