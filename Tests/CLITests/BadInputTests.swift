import Foundation
import Testing

/// Bad input to the offline commands. Each case: exactly one line on stderr starting with `readersync: error:`,
/// exit code 1, nothing on stdout, and the replica unchanged (its `dump`, or the file's bytes, before and after).
@Suite("readersync: bad input")
final class BadInputTests {
    let box: Sandbox
    init() throws { box = try Sandbox() }

    /// Runs `args` against a replica with the fixture and checks the error contract and that `dump` did not change.
    private func expectRefused(_ args: String..., mentions: [String] = [], db: String = "r.db",
                               sourceLocation: SourceLocation = #_sourceLocation) throws {
        let before = try box.dump(db, sourceLocation: sourceLocation)
        let logBefore = try box.lastSequence(db, sourceLocation: sourceLocation)
        let result = try box.start(args).finish()
        expectError(result, mentions: mentions, sourceLocation: sourceLocation)
        #expect(try box.dump(db, sourceLocation: sourceLocation) == before, "dump changed after \(result)",
                sourceLocation: sourceLocation)
        #expect(try box.lastSequence(db, sourceLocation: sourceLocation) == logBefore,
                "a change was recorded by \(result)", sourceLocation: sourceLocation)
    }

    // MARK: - Unknown ids

    @Test("an unknown article id is refused by every command that takes one")
    func unknownArticle() throws {
        try box.replicaWithFixture("r.db")
        for command in ["show", "read", "unread", "save", "unsave"] {
            try expectRefused(command, "--db", "r.db", "no-such-article", mentions: ["no article with id 'no-such-article'"])
        }
        try expectRefused("progress", "--db", "r.db", "no-such-article", "0.5", mentions: ["no-such-article"])
        try expectRefused("comment", "add", "--db", "r.db", "no-such-article", "hello", mentions: ["no-such-article"])
    }

    @Test("an unknown comment id is refused by reply, edit and delete")
    func unknownComment() throws {
        try box.replicaWithFixture("r.db")
        try expectRefused("comment", "add", "--db", "r.db", FixtureIDs.main, "hi", "--reply-to", "no-such-comment",
                          mentions: ["no comment with id 'no-such-comment'"])
        try expectRefused("comment", "edit", "--db", "r.db", "no-such-comment", "text",
                          mentions: ["no comment with id 'no-such-comment'"])
        try expectRefused("comment", "delete", "--db", "r.db", "no-such-comment",
                          mentions: ["no comment with id 'no-such-comment'"])
    }

    @Test("a reply to a comment of another article is refused")
    func replyAcrossArticles() throws {
        try box.replicaWithFixture("r.db")
        let comment = try box.addComment("r.db", FixtureIDs.main, "on the main article")
        try expectRefused("comment", "add", "--db", "r.db", FixtureIDs.gaza, "misplaced", "--reply-to", comment,
                          mentions: [comment, FixtureIDs.main])
    }

    // MARK: - Import files

    @Test("an import file that is not JSON is refused")
    func importNotJSON() throws {
        try box.replicaWithFixture("r.db")
        try box.write("notes.txt", "These are my notes,\nnot articles.\n")
        try expectRefused("import", "--db", "r.db", "notes.txt", mentions: ["line 1", "not valid JSON"])
        try box.write("empty.json", "\n\n")
        try expectRefused("import", "--db", "r.db", "empty.json", mentions: ["empty"])
        try box.write("number.json", "42")
        try expectRefused("import", "--db", "r.db", "number.json")
        try expectRefused("import", "--db", "r.db", "missing.json", mentions: ["missing.json"])
    }

    @Test("JSON Lines with a bad line 3 names line 3 and imports nothing")
    func importBadLine3() throws {
        try box.replicaWithFixture("r.db")
        try box.write("feed.jsonl", """
            {"id":"l1","source":"Wire","title":"One","body":"Text"}
            {"id":"l2","source":"Wire","title":"Two","body":"Text"}
            {"id":"l3","source":"Wire","title":"Three",
            {"id":"l4","source":"Wire","title":"Four","body":"Text"}

            """)
        try expectRefused("import", "--db", "r.db", "feed.jsonl", mentions: ["line 3"])
    }

    @Test("an article without a title names the field and imports nothing")
    func importMissingTitle() throws {
        try box.replicaWithFixture("r.db")
        try box.write("feed.jsonl", """
            {"id":"l1","source":"Wire","title":"One","body":"Text"}
            {"id":"l2","source":"Wire","body":"Text"}

            """)
        try expectRefused("import", "--db", "r.db", "feed.jsonl", mentions: ["line 2", "title", "missing"])

        // The page shape names the article by its index.
        try box.write("page.json", """
            {"articles": [{"id":"p1","source":"Wire","title":"Fine","body":"Text"},
                          {"id":"p2","source":"Wire","title":"   ","body":"Text"}]}
            """)
        try expectRefused("import", "--db", "r.db", "page.json", mentions: ["articles[1]", "title"])
    }

    @Test("a partly invalid import (first article fine, second bad) imports nothing")
    func importPartlyInvalid() throws {
        try box.ok("init", "--db", "r.db", "--account", "alice")
        try box.write("page.json", """
            {"articles": [
              {"id":"good","source":"Wire","title":"A good article","body":["Fine text"]},
              {"id":"bad","source":"Wire","title":"Bad date","body":"Text","publishedAt":"yesterday"}
            ]}
            """)
        try expectRefused("import", "--db", "r.db", "page.json", mentions: ["articles[1].publishedAt"])
        #expect(try box.ok("list", "--db", "r.db").stdout == "(no articles)\n")
        #expect(try box.status("r.db")["logEntries"] as? Int == 0)

        // The same with JSON Lines and a wrongly typed field on the second line.
        try box.write("feed.jsonl", """
            {"id":"good","source":"Wire","title":"A good article","body":"Fine"}
            {"id":"bad","source":"Wire","title":"Bad topics","body":"Text","topics":"world"}
            """)
        try expectRefused("import", "--db", "r.db", "feed.jsonl", mentions: ["line 2", "topics"])
        #expect(try box.status("r.db")["articles"] as? Int == 0)
    }

    // MARK: - Values

    @Test("progress outside 0…1 is refused")
    func progressOutOfRange() throws {
        try box.replicaWithFixture("r.db")
        try box.ok("progress", "--db", "r.db", FixtureIDs.main, "0.4")
        for value in ["1.5", "1.0001", "100", "nan", "inf"] {
            try expectRefused("progress", "--db", "r.db", FixtureIDs.main, value, mentions: ["between 0 and 1"])
        }
        // A negative number reaches the range check, with or without a `--` separator.
        try expectRefused("progress", "--db", "r.db", FixtureIDs.main, "-0.5", mentions: ["between 0 and 1", "-0.5"])
        try expectRefused("progress", "--db", "r.db", FixtureIDs.main, "--", "-0.5", mentions: ["between 0 and 1", "-0.5"])
    }

    @Test("non-numeric progress is refused")
    func progressNotANumber() throws {
        try box.replicaWithFixture("r.db")
        for value in ["half", "", "0,5", "50%"] {
            try expectRefused("progress", "--db", "r.db", FixtureIDs.main, value, mentions: ["number"])
        }
    }

    @Test("an empty comment is refused, on add, reply and edit")
    func emptyComment() throws {
        try box.replicaWithFixture("r.db")
        let comment = try box.addComment("r.db", FixtureIDs.main, "something")
        try expectRefused("comment", "add", "--db", "r.db", FixtureIDs.main, "", mentions: ["empty"])
        try expectRefused("comment", "add", "--db", "r.db", FixtureIDs.main, "  \n\t ", mentions: ["empty"])
        try expectRefused("comment", "add", "--db", "r.db", FixtureIDs.main, " ", "--reply-to", comment, mentions: ["empty"])
        try expectRefused("comment", "edit", "--db", "r.db", comment, "   ", mentions: ["empty"])
    }

    @Test("editing or deleting someone else's comment is refused")
    func someoneElsesComment() throws {
        try box.replicaWithFixture("bob.db", account: "bob")
        try box.ok("init", "--db", "alice.db", "--account", "alice")
        let bobs = try box.addComment("bob.db", FixtureIDs.main, "Bob's view")
        try box.ok("sync", "--db", "alice.db", "bob.db")
        #expect(try box.ok("show", "--db", "alice.db", FixtureIDs.main).stdout.contains("- bob: Bob's view  (\(bobs))"))

        try expectRefused("comment", "edit", "--db", "alice.db", bobs, "Alice rewrites it",
                          mentions: [bobs, "bob"], db: "alice.db")
        try expectRefused("comment", "delete", "--db", "alice.db", bobs, mentions: [bobs, "bob"], db: "alice.db")
        // Replying is fine.
        _ = try box.addComment("alice.db", FixtureIDs.main, "Alice replies", replyTo: bobs)
    }

    @Test("editing a deleted comment is refused")
    func editDeletedComment() throws {
        try box.replicaWithFixture("r.db")
        let comment = try box.addComment("r.db", FixtureIDs.main, "soon gone")
        try box.ok("comment", "delete", "--db", "r.db", comment)
        try expectRefused("comment", "edit", "--db", "r.db", comment, "back again", mentions: ["deleted"])
        try expectRefused("comment", "add", "--db", "r.db", FixtureIDs.main, "reply", "--reply-to", comment, mentions: ["deleted"])
    }

    @Test("an invalid account name is refused and creates nothing")
    func invalidAccount() throws {
        for name in ["", "has space", "semi;colon", String(repeating: "x", count: 65)] {
            let result = try box.run("init", "--db", "r.db", "--account", name)
            expectError(result, mentions: ["account name"])
            #expect(!box.exists("r.db"))
        }
    }

    // MARK: - Paths

    @Test("init where the file cannot be written is refused and leaves nothing behind")
    func unwritablePath() throws {
        expectError(try box.run("init", "--db", box.path("no/such/dir/r.db"), "--account", "alice"), mentions: ["no/such/dir"])
        #expect(!box.exists("no"))

        try box.write("plain.txt", "a file, not a directory\n")
        expectError(try box.run("init", "--db", "plain.txt/r.db", "--account", "alice"), mentions: ["plain.txt/r.db"])
        #expect(try box.bytes("plain.txt") == Data("a file, not a directory\n".utf8))

        // /proc refuses new files even for root.
        if FileManager.default.fileExists(atPath: "/proc/self") {
            expectError(try box.run("init", "--db", "/proc/readersync-test.db", "--account", "alice"))
        }
    }

    @Test("init in a read-only directory is refused", .enabled(if: geteuid() != 0, "root can write a read-only directory"))
    func readOnlyDirectory() throws {
        try FileManager.default.createDirectory(atPath: box.path("locked"), withIntermediateDirectories: false)
        #expect(chmod(box.path("locked"), 0o555) == 0)
        expectError(try box.run("init", "--db", "locked/r.db", "--account", "alice"), mentions: ["locked"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: box.path("locked")).isEmpty)
    }

    @Test("init over an existing replica is refused and leaves it as it was")
    func initOverExisting() throws {
        try box.replicaWithFixture("r.db")
        try expectRefused("init", "--db", "r.db", "--account", "mallory", mentions: ["already exists"])
        #expect(try box.status("r.db")["account"] as? String == "alice")
    }

    @Test("a missing replica file is reported, not created")
    func missingReplica() throws {
        for args in [["list"], ["status"], ["dump"], ["read", FixtureIDs.main]] {
            expectError(try box.start(args + ["--db", "absent.db"]).finish(), mentions: ["absent.db", "readersync init"])
            #expect(!box.exists("absent.db"))
        }
    }

    // MARK: - Files that are not replicas

    /// Runs a few commands on a file that is not a usable replica; each must fail with one line and leave the
    /// file byte-identical, creating no WAL or journal beside it.
    ///
    /// `walSidecars`: a WAL-mode database opened read-only gets `-shm` and an empty `-wal` beside it (SQLite
    /// needs them to read); they are allowed only when set, and the `-wal` must stay empty.
    private func expectUntouched(_ name: String, mentions: [String], walSidecars: Bool = false,
                                 sourceLocation: SourceLocation = #_sourceLocation) throws {
        let before = try box.bytes(name)
        var siblings = try FileManager.default.contentsOfDirectory(atPath: box.directory.path).sorted()
        if walSidecars { siblings.removeAll { $0 == "\(name)-shm" || $0 == "\(name)-wal" } }
        for args in [["status"], ["list"], ["dump"], ["read", FixtureIDs.main], ["import", CLIPaths.fixture.path],
                     ["comment", "add", FixtureIDs.main, "hi"]] {
            let result = try box.start(args + ["--db", name]).finish()
            expectError(result, mentions: mentions, sourceLocation: sourceLocation)
            #expect(try box.bytes(name) == before, "\(name) changed after \(result)", sourceLocation: sourceLocation)
        }
        var after = try FileManager.default.contentsOfDirectory(atPath: box.directory.path).sorted()
        if walSidecars {
            after.removeAll { $0 == "\(name)-shm" }
            if after.contains("\(name)-wal") {
                #expect(try box.bytes("\(name)-wal").isEmpty, "the WAL beside \(name) got content",
                        sourceLocation: sourceLocation)
                after.removeAll { $0 == "\(name)-wal" }
            }
        }
        #expect(after == siblings, "files appeared beside \(name)", sourceLocation: sourceLocation)
    }

    @Test("a text file is not a replica, and stays as it was")
    func textFileIsNotAReplica() throws {
        try box.write("notes.db", "just some text\n")
        try expectUntouched("notes.db", mentions: ["notes.db", "not a ReaderSync replica"])
    }

    @Test("a file with only a SQLite header is not a replica, and stays as it was")
    func bareSQLiteHeader() throws {
        var bytes = Data("SQLite format 3\u{0}".utf8)
        bytes.append(Data(repeating: 0, count: 84))
        try box.write("header.db", bytes: bytes)
        try expectUntouched("header.db", mentions: ["header.db", "not a ReaderSync replica"])
    }

    @Test("another program's SQLite database is not a replica, and stays as it was",
          .enabled(if: CLIPaths.sqlite3 != nil, "needs the sqlite3 shell"))
    func foreignSQLiteDatabase() throws {
        let made = try runTool(try #require(CLIPaths.sqlite3), [box.path("other.db"),
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT); INSERT INTO notes (text) VALUES ('mine');"])
        #expect(made == 0)
        try expectUntouched("other.db", mentions: ["other.db", "not a ReaderSync replica"])
    }

    @Test("a replica from a newer version is refused and left untouched",
          .enabled(if: CLIPaths.sqlite3 != nil, "needs the sqlite3 shell"))
    func newerReplica() throws {
        try box.replicaWithFixture("r.db")
        try box.ok("read", "--db", "r.db", FixtureIDs.main)
        // Fold the WAL into the file, then stamp a future schema version on it.
        let stamped = try runTool(try #require(CLIPaths.sqlite3),
                                  [box.path("r.db"), "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA user_version = 99;"])
        #expect(stamped == 0)
        try expectUntouched("r.db", mentions: ["r.db", "newer", "v99"], walSidecars: true)
    }

    @Test("a directory is not a replica")
    func directoryIsNotAReplica() throws {
        try FileManager.default.createDirectory(atPath: box.path("folder.db"), withIntermediateDirectories: false)
        expectError(try box.run("status", "--db", "folder.db"), mentions: ["folder.db", "directory"])
    }
}

/// Runs a tool (not readersync) quietly and returns its exit status.
func runTool(_ path: String, _ arguments: [String]) throws -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    process.standardInput = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    return process.terminationStatus
}
