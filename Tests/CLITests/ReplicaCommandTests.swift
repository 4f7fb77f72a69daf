import Foundation
import Testing

/// The offline commands of `readersync`, run as the built binary: init, import, list, show, the read-state and
/// comment mutations, log, status and dump.
@Suite("readersync: replica commands")
final class ReplicaCommandTests {
    let box: Sandbox
    init() throws { box = try Sandbox() }

    // MARK: - init

    @Test("init creates a replica of the given account and says where")
    func initCreatesReplica() throws {
        let result = try box.ok("init", "--db", "r.db", "--account", "alice")
        let words = result.stdout.split(separator: " ")
        #expect(result.stdout.hasPrefix("created replica "))
        #expect(result.stdout.hasSuffix(" for account alice at r.db\n"))
        let replicaID = String(words[2])
        #expect(UUID(uuidString: replicaID) != nil, "replica id should be a UUID: \(result)")
        #expect(box.exists("r.db"))

        let status = try box.status("r.db")
        #expect(status["account"] as? String == "alice")
        #expect(status["replica"] as? String == replicaID)
        #expect(status["articles"] as? Int == 0)
        #expect(status["logEntries"] as? Int == 0)
    }

    @Test("--db defaults to $READERSYNC_DB, else ./readersync.db")
    func dbPathDefaults() throws {
        try box.ok("init", "--account", "alice", environment: ["READERSYNC_DB": box.path("from-env.db")])
        #expect(box.exists("from-env.db"))
        #expect(!box.exists("readersync.db"))

        try box.ok("init", "--account", "bob")
        #expect(box.exists("readersync.db"))
        let status = try box.ok("status", "--json")
        #expect(try (parseJSON(status) as? [String: Any])?["account"] as? String == "bob")
    }

    // MARK: - import

    @Test("import takes the captured page's four articles; importing again adds nothing")
    func importFixture() throws {
        try box.ok("init", "--db", "r.db", "--account", "alice")
        let first = try box.ok("import", "--db", "r.db", CLIPaths.fixture.path)
        #expect(first.lines.first == "imported 4 articles: 4 new, 0 updated, 0 unchanged", "\(first)")
        // The page's capture metadata has no place in the article model: it is reported, not dropped silently.
        #expect(first.lines.dropFirst().first == "left out 2 fields the article model does not hold: "
                + "ageWhenCaptured (3 articles, first at articles[1].ageWhenCaptured), "
                + "dateline (1 article, first at articles[0].dateline); --strict refuses such files", "\(first)")
        #expect(try box.status("r.db")["articles"] as? Int == 4)

        let dumpBefore = try box.dump("r.db")
        let logBefore = try box.status("r.db")["logEntries"] as? Int
        let again = try box.ok("import", "--db", "r.db", CLIPaths.fixture.path)
        #expect(again.lines.first == "imported 4 articles: 0 new, 0 updated, 4 unchanged")
        #expect(try box.dump("r.db") == dumpBefore)
        #expect(try box.status("r.db")["logEntries"] as? Int == logBefore, "a re-import must record nothing")

        // The ids and text are kept verbatim.
        let articles = DumpParts(try box.dumpJSON("r.db")).articles
        #expect(Set(articles.compactMap { $0["id"] as? String }) == Set(FixtureIDs.all))
        let main = try #require(articles.first { $0["id"] as? String == FixtureIDs.main })
        #expect(main["source"] as? String == "Associated Press")
        #expect(main["byline"] as? String == "Vladimir Isachenkov")
        #expect((main["body"] as? String)?.hasPrefix("MOSCOW — U.S. President Donald Trump") == true)
    }

    @Test("import reads JSON Lines and reports updated articles")
    func importJSONLines() throws {
        try box.ok("init", "--db", "r.db", "--account", "alice")
        try box.write("a.jsonl", """
            {"id":"one","source":"Wire","title":"First","body":"Text one","publishedAt":"2025-07-01T10:00:00Z"}

            {"id":"two","source":"Wire","title":"Second","body":["Para 1","Para 2"],"topics":["world"]}

            """)
        #expect(try box.ok("import", "--db", "r.db", "a.jsonl").stdout == "imported 2 articles: 2 new, 0 updated, 0 unchanged\n")
        try box.write("b.jsonl", """
            {"id":"one","source":"Wire","title":"First (corrected)","body":"Text one","publishedAt":"2025-07-01T10:00:00Z"}
            {"id":"two","source":"Wire","title":"Second","body":["Para 1","Para 2"],"topics":["world"]}
            """)
        #expect(try box.ok("import", "--db", "r.db", "b.jsonl").stdout == "imported 2 articles: 0 new, 1 updated, 1 unchanged\n")
        let articles = DumpParts(try box.dumpJSON("r.db")).articles
        #expect(articles.first { $0["id"] as? String == "one" }?["title"] as? String == "First (corrected)")
        #expect(articles.first { $0["id"] as? String == "two" }?["body"] as? String == "Para 1\n\nPara 2")
    }

    // MARK: - list

    @Test("list shows every article with its source and title")
    func listShowsFeed() throws {
        try box.replicaWithFixture("r.db")
        let result = try box.ok("list", "--db", "r.db")
        #expect(result.lines.count == 4, "\(result)")
        for id in FixtureIDs.all {
            #expect(result.lines.contains { $0.contains("  \(id)  ") && $0.hasPrefix("unread") }, "\(id) missing: \(result)")
        }
        #expect(result.stdout.contains("Associated Press: Putin and Trump discuss Iran and Ukraine in phone call"))
        #expect(result.stdout.contains("Globe and Mail: Trump expects final decision on Hamas peace proposal in 24 hours"))
    }

    @Test("list --unread, --saved and --source filter the feed")
    func listFilters() throws {
        try box.replicaWithFixture("r.db")
        try box.ok("read", "--db", "r.db", FixtureIDs.gaza)
        try box.ok("save", "--db", "r.db", FixtureIDs.stocks)

        let unread = try box.ok("list", "--db", "r.db", "--unread")
        #expect(unread.lines.count == 3, "\(unread)")
        #expect(!unread.stdout.contains(FixtureIDs.gaza))

        let saved = try box.ok("list", "--db", "r.db", "--saved")
        #expect(saved.lines.count == 1, "\(saved)")
        #expect(saved.stdout.contains(FixtureIDs.stocks))
        #expect(saved.stdout.hasPrefix("unread saved"))

        let globe = try box.ok("list", "--db", "r.db", "--source", "Globe and Mail")
        #expect(globe.lines.count == 1 && globe.stdout.contains(FixtureIDs.hamas), "\(globe)")
        let canada = try box.ok("list", "--db", "r.db", "--source", "Canada News.Net")
        #expect(canada.lines.count == 2, "\(canada)")
        #expect(canada.stdout.contains(FixtureIDs.gaza) && canada.stdout.contains(FixtureIDs.stocks))

        let both = try box.ok("list", "--db", "r.db", "--unread", "--source", "Canada News.Net")
        #expect(both.lines.count == 1 && both.stdout.contains(FixtureIDs.stocks), "\(both)")

        #expect(try box.ok("list", "--db", "r.db", "--source", "Nobody").stdout == "(no articles)\n")
    }

    @Test("list --json gives each article with its read state and comment count")
    func listJSON() throws {
        try box.replicaWithFixture("r.db")
        try box.ok("save", "--db", "r.db", FixtureIDs.stocks)
        _ = try box.addComment("r.db", FixtureIDs.main, "A comment")

        let document = try #require(try parseJSON(try box.ok("list", "--db", "r.db", "--json")) as? [String: Any])
        #expect(document["format"] as? String == "readersync-list/1")
        #expect(document["next"] is NSNull, "not a terminal and no --limit: the whole feed, so no next page")
        let all = try #require(document["items"] as? [[String: Any]])
        #expect(all.count == 4)
        let ids = all.compactMap { ($0["article"] as? [String: Any])?["id"] as? String }
        #expect(Set(ids) == Set(FixtureIDs.all))
        let main = try #require(all.first { ($0["article"] as? [String: Any])?["id"] as? String == FixtureIDs.main })
        #expect(main["commentCount"] as? Int == 1)

        let savedDocument = try parseJSON(try box.ok("list", "--db", "r.db", "--saved", "--json")) as? [String: Any]
        let saved = try #require(savedDocument?["items"] as? [[String: Any]])
        #expect(saved.count == 1)
        let state = try #require(saved.first?["readState"] as? [String: Any])
        #expect(state["article"] as? String == FixtureIDs.stocks)
        #expect(state["savedAt"] is String)
        #expect(state["readAt"] is NSNull, "absent values are explicit nulls")
        #expect((saved.first?["article"] as? [String: Any])?["body"] == nil, "no bodies without --with-body")
    }

    // MARK: - show

    @Test("show prints the article, then its comments as a thread")
    func showArticleThenThread() throws {
        try box.replicaWithFixture("r.db")
        let first = try box.addComment("r.db", FixtureIDs.main, "First comment")
        let reply = try box.addComment("r.db", FixtureIDs.main, "A reply", replyTo: first)
        let second = try box.addComment("r.db", FixtureIDs.main, "Second comment")

        let result = try box.ok("show", "--db", "r.db", FixtureIDs.main)
        let lines = result.stdout.components(separatedBy: "\n")
        #expect(lines.first == "Putin and Trump discuss Iran and Ukraine in phone call, Kremlin official says")
        #expect(lines.dropFirst().first == "Associated Press · by Vladimir Isachenkov")
        #expect(result.stdout.contains("MOSCOW — U.S. President Donald Trump"))
        #expect(result.stdout.contains("Related: \(FixtureIDs.stocks), \(FixtureIDs.gaza), \(FixtureIDs.hamas)"))

        // The thread comes after the body: top-level comments oldest first, the reply indented under its parent.
        let header = try #require(lines.firstIndex(of: "Comments (3):"), "\(result)")
        #expect(header > 4)
        let thread = Array(lines[(header + 1)...].filter { !$0.isEmpty })
        #expect(thread == [
            "  - alice: First comment  (\(first))",
            "    - alice: A reply  (\(reply))",
            "  - alice: Second comment  (\(second))",
        ])
    }

    @Test("show of an article without comments says so")
    func showWithoutComments() throws {
        try box.replicaWithFixture("r.db")
        let result = try box.ok("show", "--db", "r.db", FixtureIDs.hamas)
        #expect(result.lines.first == "Trump expects final decision on Hamas peace proposal in 24 hours")
        #expect(result.lines.contains("[unread]"))
        #expect(result.lines.last == "Comments: none yet")
    }

    @Test("show --json nests replies under their parent")
    func showJSON() throws {
        try box.replicaWithFixture("r.db")
        let first = try box.addComment("r.db", FixtureIDs.main, "First comment")
        let reply = try box.addComment("r.db", FixtureIDs.main, "A reply", replyTo: first)
        try box.ok("progress", "--db", "r.db", FixtureIDs.main, "0.25")

        let detail = try #require(try parseJSON(try box.ok("show", "--db", "r.db", "--json", FixtureIDs.main)) as? [String: Any])
        let article = try #require(detail["article"] as? [String: Any])
        #expect(article["id"] as? String == FixtureIDs.main)
        #expect(article["related"] as? [String] == [FixtureIDs.stocks, FixtureIDs.gaza, FixtureIDs.hamas])
        #expect((detail["readState"] as? [String: Any])?["progress"] as? Double == 0.25)
        let comments = try #require(detail["comments"] as? [[String: Any]])
        #expect(comments.count == 1)
        #expect(detail["commentCount"] as? Int == 2)
        let top = try #require(comments.first)
        #expect(top["id"] as? String == first)
        #expect(top["author"] as? String == "alice")
        #expect(top["body"] as? String == "First comment")
        #expect(top["parent"] is NSNull)
        let replies = try #require(top["replies"] as? [[String: Any]])
        let replyComment = try #require(replies.first)
        #expect(replyComment["id"] as? String == reply)
        #expect(replyComment["parent"] as? String == first)
    }

    // MARK: - Read state

    @Test("read, unread, progress, save and unsave change the read state")
    func readStateMutations() throws {
        try box.replicaWithFixture("r.db")
        func state() throws -> [String: Any] {
            let detail = try parseJSON(try box.ok("show", "--db", "r.db", "--json", FixtureIDs.main)) as? [String: Any]
            return try #require(detail?["readState"] as? [String: Any])
        }

        #expect(try box.ok("read", "--db", "r.db", FixtureIDs.main).stdout == "marked \(FixtureIDs.main) read\n")
        #expect(try state()["readAt"] is String)
        #expect(try state()["read"] as? Bool == true)

        #expect(try box.ok("progress", "--db", "r.db", FixtureIDs.main, "0.75").stdout == "progress of \(FixtureIDs.main): 0.75\n")
        #expect(try state()["progress"] as? Double == 0.75)
        #expect(try box.ok("list", "--db", "r.db").lines.contains { $0.hasPrefix("read          75%  (no date)   \(FixtureIDs.main)  ") })

        #expect(try box.ok("save", "--db", "r.db", FixtureIDs.main).stdout == "saved \(FixtureIDs.main)\n")
        #expect(try state()["savedAt"] is String)

        #expect(try box.ok("unsave", "--db", "r.db", FixtureIDs.main).stdout == "unsaved \(FixtureIDs.main)\n")
        #expect(try state()["savedAt"] is NSNull)
        #expect(try state()["saved"] as? Bool == false)

        #expect(try box.ok("unread", "--db", "r.db", FixtureIDs.main).stdout == "marked \(FixtureIDs.main) unread\n")
        let after = try state()
        #expect(after["readAt"] is NSNull)
        #expect(after["progress"] as? Double == 0, "unread resets the progress")
        #expect(DumpParts(try box.dumpJSON("r.db")).readStates.isEmpty, "an all-default read state is not dumped")
    }

    // MARK: - Comments

    @Test("comment add, --reply-to, edit and delete")
    func commentLifecycle() throws {
        try box.replicaWithFixture("r.db")
        let top = try box.addComment("r.db", FixtureIDs.main, "Interesting call")
        let reply = try box.addComment("r.db", FixtureIDs.main, "Agreed", replyTo: top)

        #expect(try box.ok("comment", "edit", "--db", "r.db", top, "Interesting call, thanks").stdout == "edited comment \(top)\n")
        var shown = try box.ok("show", "--db", "r.db", FixtureIDs.main)
        #expect(shown.stdout.contains("  - alice (edited): Interesting call, thanks  (\(top))"), "\(shown)")

        #expect(try box.ok("comment", "delete", "--db", "r.db", top).stdout == "deleted comment \(top)\n")
        shown = try box.ok("show", "--db", "r.db", FixtureIDs.main)
        #expect(shown.stdout.contains("  - [deleted] (\(top))"), "\(shown)")
        #expect(shown.stdout.contains("    - alice: Agreed  (\(reply))"), "the reply keeps its place: \(shown)")
        #expect(shown.stdout.contains("Comments (1, and 1 deleted):"), "\(shown)")

        let comments = DumpParts(try box.dumpJSON("r.db")).comments
        let deleted = try #require(comments.first { $0["id"] as? String == top })
        #expect(deleted["deleted"] as? Bool == true)
        let kept = try #require(comments.first { $0["id"] as? String == reply })
        #expect(kept["parent"] as? String == top)
        #expect(kept["deleted"] as? Bool == false)
        #expect(kept["author"] as? String == "alice")
    }

    // MARK: - log

    /// The last line of `log`, split into its columns: local seq, hlc, origin#seq, "entity key .field = value".
    private func lastLogEntry(_ db: String) throws -> [String] {
        let log = try box.ok("log", "--db", db)
        let last = try #require(log.lines.last, "\(log)")
        return last.components(separatedBy: "\t")
    }

    @Test("log gets an entry for every mutation, newest last, with its timestamp and origin")
    func logRecordsEveryMutation() throws {
        try box.ok("init", "--db", "r.db", "--account", "alice")
        #expect(try box.ok("log", "--db", "r.db").stdout == "(change log is empty)\n")
        try box.ok("import", "--db", "r.db", CLIPaths.fixture.path)
        let imported = try box.ok("log", "--db", "r.db").lines
        #expect(imported.count == 4)
        for id in FixtureIDs.all {
            #expect(imported.contains { $0.contains("\tarticle \(id) .content = ") }, "\(imported)")
        }

        var expectedLocalSeq = 4
        func check(_ args: [String], _ expected: String, entries: Int = 1,
                   sourceLocation: SourceLocation = #_sourceLocation) throws {
            let result = try box.start(args).finish()
            #expect(result.status == 0, "\(result)", sourceLocation: sourceLocation)
            expectedLocalSeq += entries
            let columns = try lastLogEntry("r.db")
            #expect(columns.count == 4, "\(columns)", sourceLocation: sourceLocation)
            guard columns.count == 4 else { return }
            #expect(columns[0].hasSuffix("-\(expectedLocalSeq)"), "the cursor ends with the sequence number: \(columns)", sourceLocation: sourceLocation)
            #expect(columns[1].range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z#\d+$"#, options: .regularExpression) != nil,
                    "hybrid timestamp: \(columns)", sourceLocation: sourceLocation)
            #expect(columns[2] == "local#\(expectedLocalSeq)", "\(columns)", sourceLocation: sourceLocation)
            #expect(columns[3].hasPrefix(expected), "expected '\(expected)…' in \(columns)", sourceLocation: sourceLocation)
        }
        try check(["read", "--db", "r.db", FixtureIDs.main], "readState \(FixtureIDs.main) .read = ")
        try check(["progress", "--db", "r.db", FixtureIDs.main, "0.5"], "readState \(FixtureIDs.main) .progress = 0.5")
        try check(["save", "--db", "r.db", FixtureIDs.stocks], "readState \(FixtureIDs.stocks) .saved = ")
        try check(["unsave", "--db", "r.db", FixtureIDs.stocks], "readState \(FixtureIDs.stocks) .saved = null")
        try check(["unread", "--db", "r.db", FixtureIDs.main], "readState \(FixtureIDs.main) .progress = null", entries: 2)
        let comment = try box.addComment("r.db", FixtureIDs.main, "hello log")
        expectedLocalSeq += 2
        var columns = try lastLogEntry("r.db")
        #expect(columns.last == "comment \(comment) .body = \"hello log\"")
        let reply = try box.addComment("r.db", FixtureIDs.main, "a reply", replyTo: comment)
        expectedLocalSeq += 2
        let log = try box.ok("log", "--db", "r.db").stdout
        #expect(log.contains("comment \(reply) .created = \"{\"article\":\"\(FixtureIDs.main)\",\"parent\":"), "\(log)")
        try check(["comment", "edit", "--db", "r.db", comment, "edited text"], "comment \(comment) .body = \"edited text\"")
        try check(["comment", "delete", "--db", "r.db", comment], "comment \(comment) .deleted = true")
        columns = try lastLogEntry("r.db")
        #expect(columns[0].hasSuffix("-\(expectedLocalSeq)"))

        // --json gives the same entries as data.
        let document = try #require(try parseJSON(try box.ok("log", "--db", "r.db", "--json")) as? [String: Any])
        #expect(document["format"] as? String == "readersync-log/1")
        let entries = try #require(document["entries"] as? [[String: Any]])
        let last = try #require(entries.last)
        #expect((last["cursor"] as? String)?.hasSuffix("-\(expectedLocalSeq)") == true, "the cursor is a string")
        #expect(last["seq"] as? String == "\(expectedLocalSeq)", "sequence numbers are strings")
        #expect(last["originAccount"] as? String == "alice")
        #expect(last["local"] as? Bool == true)
        #expect(last["key"] as? String == comment)
        #expect(last["field"] as? String == "deleted")
    }

    // MARK: - status

    @Test("status shows the replica id, account, counts, clock and log size")
    func statusCounts() throws {
        let created = try box.ok("init", "--db", "r.db", "--account", "alice")
        let replicaID = String(created.stdout.split(separator: " ")[2])
        try box.ok("import", "--db", "r.db", CLIPaths.fixture.path)
        try box.ok("read", "--db", "r.db", FixtureIDs.main)
        try box.ok("save", "--db", "r.db", FixtureIDs.stocks)
        _ = try box.addComment("r.db", FixtureIDs.main, "one")
        let gone = try box.addComment("r.db", FixtureIDs.main, "two")
        try box.ok("comment", "delete", "--db", "r.db", gone)

        let text = try box.ok("status", "--db", "r.db")
        #expect(text.lines.contains("replica:   \(replicaID)"), "\(text)")
        #expect(text.lines.contains("account:   alice (device)"), "\(text)")
        #expect(text.lines.contains("articles:  4"), "\(text)")
        #expect(text.lines.contains("comments:  1"), "deleted comments are not counted: \(text)")
        #expect(text.lines.contains("read states: 2"), "\(text)")
        #expect(text.lines.contains { $0.hasPrefix("clock:     20") }, "\(text)")
        #expect(text.lines.contains { $0.hasPrefix("change log: ") && $0.contains(" entries retained (~") }, "\(text)")

        let json = try box.status("r.db")
        #expect(json["replica"] as? String == replicaID)
        #expect(json["articles"] as? Int == 4)
        #expect(json["comments"] as? Int == 1)
        #expect(json["readStates"] as? Int == 2)
        // 4 articles + read + save + 2×2 comment entries + delete = 11 recorded; the deleted comment's body is compacted.
        #expect(json["lastSequence"] as? String == "11")
        let entries = try #require(json["logEntries"] as? Int)
        #expect(entries >= 4 && entries <= 11, "\(json)")
        #expect(text.lines.contains("change log: \(entries) entries retained (~\(formatBytesLikeCLI(json["logBytes"] as? Int ?? -1)))"), "\(text)")
        #expect(try box.ok("log", "--db", "r.db").lines.count == entries, "status counts the entries log prints")
    }

    // MARK: - dump

    @Test("dump is canonical JSON with sorted keys and rows, and no replica-local fields")
    func dumpIsCanonical() throws {
        let created = try box.ok("init", "--db", "r.db", "--account", "alice")
        let replicaID = String(created.stdout.split(separator: " ")[2])
        try box.ok("import", "--db", "r.db", CLIPaths.fixture.path)
        try box.ok("read", "--db", "r.db", FixtureIDs.main)
        _ = try box.addComment("r.db", FixtureIDs.main, "zeta")
        _ = try box.addComment("r.db", FixtureIDs.main, "alpha")

        let data = try box.dump("r.db")
        #expect(try box.dump("r.db") == data, "dump is stable")
        let text = String(decoding: data, as: UTF8.self)
        #expect(!text.contains(replicaID), "the replica id is replica-local")
        #expect(!text.contains("cursor") && !text.contains("\"seq\""))

        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(json["format"] as? String == "readersync-dump/1")
        let parts = DumpParts(json)
        #expect(parts.articles.compactMap { $0["id"] as? String } == FixtureIDs.all.sorted(), "rows sorted by id")
        let commentIDs = parts.comments.compactMap { $0["id"] as? String }
        #expect(commentIDs == commentIDs.sorted() && commentIDs.count == 2, "rows sorted by id")
        let unsorted = objectsWithUnsortedKeys(text)
        #expect(unsorted.isEmpty, "keys are sorted in every object: \(unsorted)")
        // Every row has every key, absent values as explicit nulls.
        let article = try #require(parts.articles.first { $0["id"] as? String == FixtureIDs.hamas })
        #expect(Set(article.keys) == ["body", "byline", "id", "publishedAt", "related", "source", "title", "topics", "updatedAt", "url"])
        #expect(article["url"] is NSNull)
        #expect(parts.readStates.count == 1)
        #expect(parts.readStates.first?["account"] as? String == "alice")
    }

    // MARK: - Usage errors

    @Test("usage errors exit 64")
    func usageErrorsExit64() throws {
        try box.replicaWithFixture("r.db")
        let dumpBefore = try box.dump("r.db")
        #expect(try box.run("frobnicate", "--db", "r.db").status == 64)
        #expect(try box.run("read", "--db", "r.db").status == 64, "missing id")
        #expect(try box.run("bundle", "export", "--db", "r.db", "--out", "x.bundle").status == 64, "neither --all nor --for")
        #expect(!box.exists("x.bundle"))
        #expect(try box.dump("r.db") == dumpBefore)
        let help = try box.run("--help")
        #expect(help.status == 0)
        for command in ["init", "import", "list", "show", "read", "unread", "progress", "save", "unsave",
                        "comment", "log", "status", "dump", "sync", "bundle", "knowledge"] {
            #expect(help.stdout.contains("  \(command) "), "help lists \(command)")
        }
    }
}

/// The key lists of the objects in pretty-printed JSON `text` whose keys are not in sorted order.
func objectsWithUnsortedKeys(_ text: String) -> [[String]] {
    var stack: [[String]] = [[]]
    var bad: [[String]] = []
    for line in text.split(separator: "\n") {
        let trimmed = line.drop { $0 == " " }
        if trimmed.hasPrefix("\""), let end = trimmed.dropFirst().firstIndex(of: "\""),
           trimmed[trimmed.index(after: end)...].hasPrefix(" : ") {
            stack[stack.count - 1].append(String(trimmed[trimmed.index(after: trimmed.startIndex)..<end]))
        }
        if trimmed.hasPrefix("}") {
            let keys = stack.removeLast()
            if keys != keys.sorted() { bad.append(keys) }
            if stack.isEmpty { stack = [[]] }
        }
        if trimmed.hasSuffix("{") { stack.append([]) }
    }
    return bad
}

/// `formatBytes` as the CLI prints it.
func formatBytesLikeCLI(_ bytes: Int) -> String {
    if bytes < 1024 { return "\(bytes) B" }
    if bytes < 1024 * 1024 { return String(format: "%.1f KiB", Double(bytes) / 1024) }
    return String(format: "%.1f MiB", Double(bytes) / 1024 / 1024)
}
