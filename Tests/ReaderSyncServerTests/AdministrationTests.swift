import Foundation
import ReaderSync
import ReaderSyncServer
import Testing

/// Token rotation, and which commands may create a store file.
@Suite("Administration")
struct AdministrationTests {
    @Test("rotateToken gives a new token, kills the old one at once, and brings a revoked account back")
    func rotateInStore() async throws {
        let store = try SQLiteServerStore.inMemory()
        let added = try await store.addAccount(name: "alice", role: .editor)
        let rotated = try await store.rotateToken(name: "alice")
        #expect(rotated.token != added.token)
        #expect(rotated.account.role == .editor && rotated.account.isActive)
        #expect(try await store.authenticate(token: added.token) == nil)
        #expect(try await store.authenticate(token: rotated.token)?.name == "alice")

        _ = try await store.revokeAccount(name: "alice")
        #expect(try await store.authenticate(token: rotated.token) == nil)
        let back = try await store.rotateToken(name: "alice")
        #expect(back.account.isActive)
        #expect(try await store.authenticate(token: back.token)?.name == "alice")
        #expect(try await store.accounts().map(\.name) == ["alice"])

        let missing = await #expect(throws: ServerStoreError.self) { try await store.rotateToken(name: "nobody") }
        #expect(missing?.kind == .notFound)
        #expect(missing?.message == "no account named 'nobody'")
    }

    @Test("account rotate prints a new token; the old one is refused at once by a running server")
    func rotateCommand() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let db = directory.path("server.db")
        let added = try await ExecutableTests.run(["account", "add", "alice", "--db", db])
        let oldToken = try #require(added.stdout.split(whereSeparator: \.isWhitespace).last.map(String.init))
        _ = try await ExecutableTests.run(["account", "revoke", "alice", "--db", db])
        let again = try await ExecutableTests.run(["account", "add", "alice", "--db", db])
        #expect(again.stderr == "readersync-server: error: account 'alice' already exists\n")

        try await withServerProcess(db: db) { server in
            let rotated = try await ExecutableTests.run(["account", "rotate", "alice", "--db", db])
            #expect(rotated.status == 0)
            let lines = rotated.stdout.split(separator: "\n").map(String.init)
            #expect(lines.first == "new token for account alice (reader); the old one no longer works; shown only once:")
            let newToken = try #require(lines.last)
            #expect(newToken.hasPrefix("rst_") && newToken != oldToken)

            let device = try Replica.inMemory(account: "alice")
            let report = try await device.sync(using: try URLSessionTransport(url: server.url, token: newToken))
            #expect(report.account.name == "alice")
            let refused = await #expect(throws: ReaderSyncError.self) {
                try await device.sync(using: try URLSessionTransport(url: server.url, token: oldToken))
            }
            #expect(refused?.message.contains("rejected the token") == true)

            let second = try await ExecutableTests.run(["account", "rotate", "alice", "--db", db])
            let newest = try #require(second.stdout.split(separator: "\n").last.map(String.init))
            let stale = await #expect(throws: ReaderSyncError.self) {
                try await device.sync(using: try URLSessionTransport(url: server.url, token: newToken))
            }
            #expect(stale != nil)
            _ = try await device.sync(using: try URLSessionTransport(url: server.url, token: newest))
        }
        let unknown = try await ExecutableTests.run(["account", "rotate", "nobody", "--db", db])
        #expect(unknown.status == 1)
        #expect(unknown.stderr == "readersync-server: error: no account named 'nobody'\n")
    }

    @Test("account list, revoke and rotate refuse a missing store file, naming it, and create nothing",
          arguments: [["account", "list"], ["account", "revoke", "alice"], ["account", "rotate", "alice"]])
    func missingStoreIsRefused(_ command: [String]) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let db = directory.path("typo.db")
        let result = try await ExecutableTests.run(command + ["--db", db])
        #expect(result.status == 1)
        #expect(result.stderr == "readersync-server: error: no server store at \(db) (the file does not exist); 'account add' or 'import' creates one\n")
        #expect(!FileManager.default.fileExists(atPath: db))
    }

    @Test("serve, account add and import create a missing store file")
    func creatingCommands() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let added = directory.path("added.db")
        #expect(try await ExecutableTests.run(["account", "add", "alice", "--db", added]).status == 0)
        #expect(FileManager.default.fileExists(atPath: added))

        let imported = directory.path("imported.db")
        let file = directory.path("articles.jsonl")
        try #"{"id": "x1", "source": "Wire", "title": "One", "body": "First"}"#.write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try await ExecutableTests.run(["import", file, "--db", imported]).status == 0)
        #expect(FileManager.default.fileExists(atPath: imported))

        let served = directory.path("served.db")
        let status = try await withServerProcess(db: served) { server in
            #expect(server.port > 0)
            return FileManager.default.fileExists(atPath: served)
        }
        #expect(status)
        #expect(try await SQLiteServerStore(path: served, createIfMissing: false).accounts().isEmpty)
    }
}
