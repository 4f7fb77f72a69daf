import Foundation
import ReaderSync
import ReaderSyncServer
import Testing

/// The SQLite store: accounts, persistence, and what it refuses to open.
@Suite("Server store")
struct StoreTests {
    @Test("Accounts: add, authenticate, list, revoke; tokens are stored only as hashes")
    func accounts() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let path = directory.path("server.db")
        let store = try SQLiteServerStore(path: path)
        let alice = try await store.addAccount(name: "alice", role: .reader)
        let bob = try await store.addAccount(name: "bob", role: .editor)
        #expect(alice.token.hasPrefix("rst_"))
        #expect(alice.token != bob.token)
        #expect(try await store.authenticate(token: alice.token)?.name == "alice")
        #expect(try await store.authenticate(token: bob.token)?.role == .editor)
        #expect(try await store.authenticate(token: "rst_guess") == nil)
        #expect(try await store.accounts().map(\.name) == ["alice", "bob"])

        let raw = try Data(contentsOf: URL(fileURLWithPath: path)) + ((try? Data(contentsOf: URL(fileURLWithPath: path + "-wal"))) ?? Data())
        #expect(raw.range(of: Data(alice.token.utf8)) == nil, "the token itself is never written")

        let revoked = try await store.revokeAccount(name: "alice")
        #expect(revoked.revokedAt != nil)
        #expect(try await store.authenticate(token: alice.token) == nil)
        #expect(try await store.revokeAccount(name: "alice").revokedAt == revoked.revokedAt)

        // Another store over the same file (another server process) sees the same accounts.
        let reopened = try SQLiteServerStore(path: path)
        #expect(try await reopened.authenticate(token: bob.token)?.name == "bob")
        #expect(try await reopened.accounts().first?.isActive == false)
    }

    @Test("Bad account requests are refused with a store error", arguments: [
        ("", ServerStoreError.Kind.invalidInput), ("has space", .invalidInput), ("readersync-server", .invalidInput),
        ("alice", .alreadyExists),
    ])
    func badAccounts(_ name: String, _ kind: ServerStoreError.Kind) async throws {
        let store = try SQLiteServerStore.inMemory()
        _ = try await store.addAccount(name: "alice", role: .reader)
        do {
            _ = try await store.addAccount(name: name, role: .reader)
            Issue.record("adding '\(name)' should fail")
        } catch let error as ServerStoreError {
            #expect(error.kind == kind)
        }
    }

    @Test("Revoking an unknown account is a not-found error")
    func revokeUnknown() async throws {
        let store = try SQLiteServerStore.inMemory()
        await #expect(throws: ServerStoreError(.notFound, "no account named 'nobody'")) {
            _ = try await store.revokeAccount(name: "nobody")
        }
    }

    @Test("A device replica or a non-replica file is not opened as a server store")
    func refusesOtherFiles() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        _ = try Replica.create(at: directory.path("device.db"), account: "alice")
        #expect(throws: ServerStoreError.self) { _ = try SQLiteServerStore(path: directory.path("device.db")) }
        try Data("not a database".utf8).write(to: URL(fileURLWithPath: directory.path("junk.db")))
        #expect(throws: ServerStoreError.self) { _ = try SQLiteServerStore(path: directory.path("junk.db")) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: directory.path("junk.db"))) == Data("not a database".utf8))
    }

    @Test("Data survives reopening; imported articles belong to every account")
    func persistence() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let path = directory.path("server.db")
        let store = try SQLiteServerStore(path: path)
        let summary = try await store.importArticles(articles(4))
        #expect(summary.inserted == 4)
        #expect(try await store.importArticles(articles(4)).unchanged == 4)
        let dump = try await store.canonicalDump(account: nil)
        let reopened = try SQLiteServerStore(path: path)
        #expect(try await reopened.canonicalDump(account: nil) == dump)
        let reader = ServerAccount(name: "carol", role: .reader, createdAt: Date())
        let page = try await reopened.pull(knowledge: Knowledge(), for: reader, maxChanges: 100)
        #expect(page.isComplete)
        let device = try Replica.inMemory(account: "carol")
        await #expect(try device.applyBundle(data: page.bundle).applied == 4)
        // The server's replica can still be opened by the core (its extra table does not disturb it).
        #expect(try Replica.open(at: path).role == .server)
    }
}
