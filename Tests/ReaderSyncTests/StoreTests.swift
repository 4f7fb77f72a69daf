import Foundation
import GRDB
import Testing
@testable import ReaderSync

@Suite("Store: files, schema, migrations, clock")
struct StoreTests {
    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    @Test func migratedSchemaMatchesSchemasFile() throws {
        let dir = TempDir()
        let replica = try Replica.create(at: dir.path("r.db"), account: "alice")
        let expected = try String(contentsOf: Self.packageRoot.appendingPathComponent("Schemas/store-schema.sql"), encoding: .utf8)
        let actual = try replica.schemaSQL()
        #expect(actual.trimmingCharacters(in: .whitespacesAndNewlines) == expected.trimmingCharacters(in: .whitespacesAndNewlines),
                "Schemas/store-schema.sql is out of date: regenerate it with `readersync schema > Schemas/store-schema.sql`")
        // The in-memory store migrates to the same schema.
        #expect(try Replica.inMemory(account: "x").schemaSQL() == actual)
    }

    /// The v1 → v2 migration on real v1 files (made by the v1 build, `Fixtures/v1/README.md`): the migrated replica
    /// prints the same canonical dump as the v1 build did, byte for byte, and still syncs.
    @Test(arguments: ["phone-v1", "tablet-v1", "server-v1"])
    func v1FilesMigrateWithTheSameDump(name: String) throws {
        let fixtures = Self.packageRoot.appendingPathComponent("Tests/ReaderSyncTests/Fixtures/v1")
        let dir = TempDir()
        let path = dir.path("\(name).sqlite")
        try FileManager.default.copyItem(at: fixtures.appendingPathComponent("\(name).sqlite"), to: URL(fileURLWithPath: path))
        let expected = try Data(contentsOf: fixtures.appendingPathComponent("\(name).dump.json"))
        let replica = try Replica.open(at: path)
        let dump = try replica.canonicalDump()
        #expect(String(decoding: dump, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                == String(decoding: expected, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines),
                "\(name) dumps differently after the migration")
        // A device replica holds exactly the current schema, and syncs with a fresh replica of its account to the same
        // dump (a server store also holds the server's own tables, and its read states go to no single account).
        guard replica.role == .device else { return }
        #expect(try replica.schemaSQL() == (try Replica.inMemory(account: "x").schemaSQL()), "migrated to the current schema")
        let peer = try Replica.inMemory(account: replica.account, role: replica.role)
        _ = try replica.sync(with: peer)
        #expect(try peer.canonicalDump() == dump)
    }

    /// The v2 → v3 migration: a file as the v2 build left it (no digest column, no index, no local tables; made here by
    /// taking those away from a v3 file) opens with the same dump, digests for every body, and a working index.
    @Test func v2FilesMigrateToV3() throws {
        let dir = TempDir()
        let path = dir.path("v2.db")
        let expected: Data
        do {
            let replica = try Replica.create(at: path, account: "alice")
            try replica.upsertArticles(try fixtureArticles())
            try replica.markRead(mainArticle)
            _ = try replica.addComment(to: mainArticle, body: "Seen in Moscow")
            expected = try replica.canonicalDump()
        }
        do {
            let queue = try DatabaseQueue(path: path)
            try queue.writeWithoutTransaction { db in
                try db.execute(sql: """
                    DROP TRIGGER article_indexed_insert; DROP TRIGGER article_indexed_delete; DROP TRIGGER article_indexed_update;
                    DROP TABLE article_search; DROP TABLE article_local; DROP TABLE setting; DROP INDEX read_state_saved;
                    ALTER TABLE article DROP COLUMN body_sha256;
                    DELETE FROM grdb_migrations WHERE identifier = 'v3-search-budget';
                    PRAGMA user_version = 2;
                    """)
            }
            try queue.close()
        }
        let migrated = try Replica.open(at: path)
        #expect(try migrated.canonicalDump() == expected)
        #expect(try migrated.search("kremlin").map(\.id).contains(mainArticle))
        let body = try migrated.article(mainArticle).article.body
        #expect(try bodyDigest(migrated, mainArticle) == ArticleBody(id: mainArticle, body: body).sha256)
        #expect(try migrated.status().schemaVersion == 3)
    }

    @Test("errors keep the SQLite result code and are matchable by case: a replica locked by another connection is busy")
    func busyIsItsOwnCase() throws {
        let dir = TempDir()
        let path = dir.path("r.db")
        let replica = try Replica.create(at: path, account: "alice", options: ReplicaOptions(busyTimeout: 0.05))
        try replica.upsertArticles([sampleArticle("a")])
        let other = try DatabaseQueue(path: path)
        // Another connection holds the write lock while the replica tries to write.
        try other.inTransaction(.immediate) { _ in
            do {
                try replica.markRead("a")
                Issue.record("the write went through a held lock")
            } catch let error as ReaderSyncError {
                guard case .busy(let message) = error else { Issue.record("not .busy: \(error)"); return .rollback }
                #expect(error.sqliteResultCode == 5)
                #expect(message.contains("mark a read"))
            } catch {
                Issue.record("not a ReaderSyncError: \(error)")
            }
            return .rollback
        }
        #expect(ReaderSyncError.notFound("x").sqliteResultCode == nil)
    }

    @Test func reopenKeepsIdentityAndData() throws {
        let dir = TempDir()
        let path = dir.path("r.db")
        let id: ReplicaID
        do {
            let replica = try Replica.create(at: path, account: "alice")
            id = replica.replicaID
            try replica.upsertArticles(try fixtureArticles())
            try replica.markRead(mainArticle)
        }
        let reopened = try Replica.open(at: path)
        #expect(reopened.replicaID == id)
        #expect(reopened.account == "alice")
        #expect(try reopened.readState(of: mainArticle).isRead)
    }

    @Test func createRefusesExistingFileAndUnwritablePlaces() throws {
        let dir = TempDir()
        let path = dir.path("r.db")
        _ = try Replica.create(at: path, account: "alice")
        #expect(throws: ReaderSyncError.self) { try Replica.create(at: path, account: "alice") }
        #expect(throws: ReaderSyncError.self) { try Replica.create(at: dir.path("missing/dir/r.db"), account: "alice") }
        #expect(throws: ReaderSyncError.self) { try Replica.create(at: dir.path("r2.db"), account: "bad name!") }
    }

    @Test func notAReplicaIsRefusedAndUntouched() throws {
        let dir = TempDir()
        let text = dir.path("notes.txt")
        try Data("just some text, long enough to not be a database header at all".utf8).write(to: URL(fileURLWithPath: text))
        let before = try Data(contentsOf: URL(fileURLWithPath: text))
        #expect(throws: ReaderSyncError.self) { try Replica.open(at: text) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: text)) == before)
        #expect(throws: ReaderSyncError.notFound("no replica at \(dir.path("absent.db"))")) {
            try Replica.open(at: dir.path("absent.db"))
        }
    }

    @Test func otherSQLiteDatabaseIsRefused() throws {
        let dir = TempDir()
        let path = dir.path("other.db")
        let other = try Replica.create(at: path, account: "x")
        try other.database.write { db in try db.execute(sql: "PRAGMA application_id = 42") }
        let before = try other.database.read { db in try Int.fetchOne(db, sql: "PRAGMA application_id") }
        #expect(before == 42)
        do {
            _ = try Replica.open(at: path)
            Issue.record("opened a foreign database")
        } catch let error as ReaderSyncError {
            #expect(error.message.contains("not a ReaderSync replica"))
        }
    }

    @Test func newerSchemaIsRefusedAndUntouched() throws {
        let dir = TempDir()
        let path = dir.path("r.db")
        do {
            let replica = try Replica.create(at: path, account: "alice")
            try replica.database.write { db in try db.execute(sql: "PRAGMA user_version = 99") }
        }
        do {
            _ = try Replica.open(at: path)
            Issue.record("opened a newer replica")
        } catch let error as ReaderSyncError {
            #expect(error.message.contains("newer ReaderSync"))
            #expect(error.message.contains("v99"))
        }
    }

    @Test func twoConnectionsWriteOneReplicaConcurrently() async throws {
        let dir = TempDir()
        let path = dir.path("r.db")
        let first = try Replica.create(at: path, account: "alice")
        try await first.upsertArticles(try fixtureArticles())
        let second = try Replica.open(at: path)
        let perWriter = 40
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, replica) in [first, second].enumerated() {
                group.addTask {
                    for i in 0..<perWriter {
                        try replica.addComment(to: mainArticle, body: "writer \(index) comment \(i)")
                    }
                }
            }
            try await group.waitForAll()
        }
        let comments = try await first.comments(on: mainArticle)
        #expect(comments.count == 2 * perWriter)
        let status = try await second.status()
        #expect(status.lastSequence == UInt64(4 + 2 * 2 * perWriter))
        // Sequence numbers have no gaps and no duplicates.
        let seqs = try await first.changeLog(limit: 100_000).map(\.change.seq)
        #expect(Set(seqs).count == seqs.count)
    }

    @Test func clockSurvivesRestartAndBackwardsWallClock() throws {
        let dir = TempDir()
        let path = dir.path("r.db")
        let t0: Int64 = 1_751_500_000_000
        let clock = ManualWallClock(millis: t0)
        let last: HLCTimestamp
        do {
            let replica = try Replica.create(at: path, account: "alice", options: options(clock: clock))
            try replica.upsertArticles([sampleArticle("a")])
            try replica.markRead("a")
            last = try replica.status().clock
            #expect(last.millis == UInt64(t0))
        }
        // The wall clock jumps back a minute across a restart (within the lead bound): the clock keeps counting.
        clock.set(t0 - 60_000)
        let reopened = try Replica.open(at: path, options: options(clock: clock))
        try reopened.save("a")
        let entries = try reopened.changeLog()
        let stamps = entries.map(\.change.hlc)
        #expect(stamps == stamps.sorted())
        #expect(try #require(stamps.last) > last)
        #expect(try reopened.status().clock.millis == UInt64(t0))
        // When the wall clock passes the old time again, the physical part follows it.
        clock.set(t0 + 500)
        try reopened.unsave("a")
        #expect(try reopened.status().clock == HLCTimestamp(millis: UInt64(t0 + 500), counter: 0))
    }

    @Test func hlcCounterOrdersEventsWithinOneMillisecond() throws {
        let bounds = ClockBounds(floorMillis: 0, maxLeadMillis: 100, maxFutureMillis: 1_000)
        var clock = HybridLogicalClock(latest: .zero)
        let a = clock.tick(wallMillis: 10, bounds: bounds)
        let b = clock.tick(wallMillis: 10, bounds: bounds)
        let c = clock.tick(wallMillis: 9, bounds: bounds)
        #expect(a < b && b < c)
        #expect(c.millis == 10 && c.counter == 2)
        clock.follow(HLCTimestamp(millis: 50, counter: 7), wallMillis: 10, bounds: bounds)
        let d = clock.tick(wallMillis: 10, bounds: bounds)
        #expect(d == HLCTimestamp(millis: 50, counter: 8))
        // A timestamp past the lead bound is followed only up to the bound…
        clock.follow(HLCTimestamp(millis: 900, counter: 0), wallMillis: 10, bounds: bounds)
        #expect(clock.tick(wallMillis: 10, bounds: bounds).millis == 111)
        // …and one past the future bound is refused.
        #expect(HybridLogicalClock.problem(with: HLCTimestamp(millis: 2_000, counter: 0), wallMillis: 10, bounds: bounds) != nil)
        #expect(HybridLogicalClock.problem(with: HLCTimestamp(millis: 900, counter: 0), wallMillis: 10, bounds: bounds) == nil)
    }

    @Test func aClockThatRanAheadRestartsFromTheLeadBound() throws {
        let bounds = ClockBounds(floorMillis: 0, maxLeadMillis: 100, maxFutureMillis: 10_000)
        var clock = HybridLogicalClock(latest: HLCTimestamp(millis: 5_000, counter: 3))   // stamped while 5 s ahead
        let next = clock.tick(wallMillis: 1_000, bounds: bounds)
        #expect(next == HLCTimestamp.endOf(millis: 1_100).successor)
        // Never before the floor.
        var early = HybridLogicalClock(latest: .zero)
        #expect(early.tick(wallMillis: 5, bounds: ClockBounds(floorMillis: 1_000)).millis == 1_000)
    }
}
