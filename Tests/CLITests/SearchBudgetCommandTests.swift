import Foundation
import Testing

/// `search`, `budget`, `evict`, and what eviction does to `show`, `status` and `sync`, run as the built binary.
@Suite("readersync: search, storage budget and eviction")
final class SearchBudgetCommandTests {
    let box: Sandbox
    init() throws { box = try Sandbox() }

    /// The main article's title, as the fixture has it.
    static let mainTitle = "Putin and Trump discuss Iran and Ukraine in phone call, Kremlin official says"
    /// The start of the main article's body.
    static let mainBodyStart = "MOSCOW — U.S. President Donald Trump"

    /// The ids a search printed, in order (the first word of each hit's second line).
    private func hitIDs(_ result: CLIResult) -> [String] {
        result.lines.filter { $0.hasPrefix("  ") && $0.contains(" · ") }
            .compactMap { $0.dropFirst(2).split(separator: " ").first.map(String.init) }
    }

    /// `search --json`'s hits, parsed.
    private func jsonHits(_ args: String..., sourceLocation: SourceLocation = #_sourceLocation) throws -> [[String: Any]] {
        let result = try box.start(["search"] + args + ["--json"]).finish()
        let object = try #require(try parseJSON(result, sourceLocation: sourceLocation) as? [String: Any],
                                  sourceLocation: sourceLocation)
        return try #require(object["hits"] as? [[String: Any]], sourceLocation: sourceLocation)
    }

    // MARK: - search

    @Test("search finds the main article by 'kremlin' (title) and 'pentagon' (body), with a marked snippet")
    func searchFindsMainArticle() throws {
        try box.replicaWithFixture("r.db")
        let kremlin = try box.ok("search", "--db", "r.db", "kremlin")
        #expect(kremlin.lines.first == Self.mainTitle, "\(kremlin)")
        #expect(hitIDs(kremlin) == [FixtureIDs.main], "\(kremlin)")
        #expect(kremlin.lines.contains("  \(FixtureIDs.main) · Associated Press · unread"), "\(kremlin)")
        #expect(kremlin.stdout.contains("[Kremlin]"), "not a terminal: matches are marked with brackets: \(kremlin)")
        #expect(!kremlin.stdout.contains("\u{1B}["), "no escape codes outside a terminal: \(kremlin)")

        let pentagon = try box.ok("search", "--db", "r.db", "pentagon")
        #expect(hitIDs(pentagon) == [FixtureIDs.main], "\(pentagon)")
        #expect(pentagon.stdout.contains("[Pentagon]"), "the snippet comes from the body: \(pentagon)")

        // Case folded; a prefix; a phrase; OR and NOT.
        #expect(hitIDs(try box.ok("search", "--db", "r.db", "PENTAGON")) == [FixtureIDs.main])
        #expect(hitIDs(try box.ok("search", "--db", "r.db", "kreml*")) == [FixtureIDs.main])
        #expect(hitIDs(try box.ok("search", "--db", "r.db", "\"phone call\"")).first == FixtureIDs.main)
        let either = Set(hitIDs(try box.ok("search", "--db", "r.db", "kremlin OR netanyahu")))
        #expect(either.contains(FixtureIDs.main) && either.contains(FixtureIDs.gaza), "\(either)")
        let without = hitIDs(try box.ok("search", "--db", "r.db", "trump NOT kremlin"))
        #expect(!without.isEmpty && !without.contains(FixtureIDs.main), "\(without)")

        let none = try box.ok("search", "--db", "r.db", "zeppelin")
        #expect(none.stdout == "(no articles match zeppelin)\n", "\(none)")
    }

    @Test("on a terminal the matched words are bold, not bracketed",
          .enabled(if: ProcessTools.script != nil, "needs util-linux `script` for a pseudo-terminal"))
    func searchBoldOnTerminal() throws {
        try box.replicaWithFixture("r.db")
        let terminal = try box.runOnTerminal("readersync search --db r.db pentagon")
        #expect(terminal.status == 0, "\(terminal.terminal)")
        #expect(terminal.terminal.contains("\u{1B}[1mPentagon\u{1B}[22m"), "\(terminal.terminal)")
        #expect(!terminal.terminal.contains("[Pentagon]"), "\(terminal.terminal)")
    }

    @Test("search --json matches its schema and carries the hit's fields and read state")
    func searchJSON() throws {
        try box.replicaWithFixture("r.db")
        try box.ok("progress", "--db", "r.db", FixtureIDs.main, "0.25")
        let result = try box.ok("search", "--db", "r.db", "kremlin", "--json")
        let schemas = try JSONSchemaValidator(directory: JSONShapeTests.schemaDirectory)
        let errors = schemas.validate(try parseJSONValue(result.stdoutData), against: "search.schema.json")
        #expect(errors.isEmpty, "\(errors)")
        let object = try #require(try parseJSON(result) as? [String: Any])
        #expect(object["format"] as? String == "readersync-search/1")
        #expect(object["query"] as? String == "kremlin")
        let hit = try #require((object["hits"] as? [[String: Any]])?.first)
        #expect(hit["id"] as? String == FixtureIDs.main)
        #expect(hit["title"] as? String == Self.mainTitle)
        #expect(hit["byline"] as? String == "Vladimir Isachenkov")
        #expect(hit["progress"] as? Double == 0.25)
        #expect(hit["bodyState"] as? String == "held")
        #expect((hit["snippet"] as? String)?.contains("[Kremlin]") == true, "\(hit)")
        #expect((hit["score"] as? Double).map { $0 > 0 } == true, "\(hit)")
    }

    @Test("search --unread, --saved, --source and --limit filter the hits")
    func searchFilters() throws {
        try box.replicaWithFixture("r.db")
        let all = Set(hitIDs(try box.ok("search", "--db", "r.db", "trump")))
        #expect(all == Set(FixtureIDs.all), "every fixture article mentions Trump: \(all)")

        try box.ok("read", "--db", "r.db", FixtureIDs.main)
        #expect(try box.ok("search", "--db", "r.db", "kremlin", "--unread").stdout == "(no articles match kremlin)\n")
        #expect(!hitIDs(try box.ok("search", "--db", "r.db", "trump", "--unread")).contains(FixtureIDs.main))
        #expect(try box.ok("search", "--db", "r.db", "kremlin").lines.contains("  \(FixtureIDs.main) · Associated Press · read"))

        try box.ok("save", "--db", "r.db", FixtureIDs.gaza)
        #expect(hitIDs(try box.ok("search", "--db", "r.db", "trump", "--saved")) == [FixtureIDs.gaza])
        #expect(try jsonHits("--db", "r.db", "trump", "--saved").first?["saved"] as? Bool == true)

        // Any letter case, as `list --source`.
        #expect(hitIDs(try box.ok("search", "--db", "r.db", "trump", "--source", "globe and mail")) == [FixtureIDs.hamas])
        #expect(Set(hitIDs(try box.ok("search", "--db", "r.db", "trump", "--source", "Canada News.Net")))
                == [FixtureIDs.stocks, FixtureIDs.gaza])

        let one = try box.run("search", "--db", "r.db", "trump", "--limit", "1")
        #expect(one.status == 0, "\(one)")
        #expect(hitIDs(one).count == 1, "\(one)")
        #expect(one.stderrLines == ["more may match: showing the best 1 hit (--limit raises it, up to 1000)"], "\(one)")
        #expect(try box.run("search", "--db", "r.db", "trump", "--limit", "0").status == 64)
    }

    @Test("a malformed query exits 1 with one line naming the problem, and no SQLite text")
    func malformedQuery() throws {
        try box.replicaWithFixture("r.db")
        for (query, mention) in [("\"unclosed phrase", "never closed"), ("kremlin OR", "OR needs a term after it"),
                                 ("(kremlin", "never closed"), ("kre*mlin", "prefix"), ("AND", "AND"), ("", "empty")] {
            let result = try box.run("search", "--db", "r.db", query)
            expectError(result, mentions: ["invalid search query", mention])
            for word in ["SQL", "fts5", "syntax error", "MATCH"] {
                #expect(!result.stderr.contains(word), "\(result)")
            }
        }
    }

    @Test("search --help documents the query syntax")
    func searchHelp() throws {
        let help = try box.ok("search", "--help").stdout
        for piece in ["\"phone call\"", "ukrain*", "kremlin OR moscow", "NOT", "(kremlin OR moscow) talks", "accents"] {
            #expect(help.contains(piece), "help mentions \(piece): \(help)")
        }
    }

    // MARK: - budget

    @Test("budget set, show and clear round trip, with units; a bad size or duration is one line")
    func budgetRoundTrip() throws {
        try box.replicaWithFixture("r.db")
        #expect(try box.ok("budget", "show", "--db", "r.db").lines.first == "budget:    none (`readersync budget set SIZE` sets one)")
        var shown = try #require(try parseJSON(try box.ok("budget", "show", "--db", "r.db", "--json")) as? [String: Any])
        #expect(shown["budget"] is NSNull)
        #expect(shown["overBudget"] as? Bool == false)
        #expect(shown["bodiesNotHeld"] as? Int == 0)

        let set = try box.ok("budget", "set", "--db", "r.db", "50MB")
        #expect(set.lines.first == "storage budget: 50.0 MB (50,000,000 bytes); unread articles younger than 7 days keep their body", "\(set)")
        #expect(set.lines.dropFirst().first?.hasSuffix(", within budget") == true, "\(set)")
        try expectBudget(bytes: 50_000_000, keep: 7 * 86_400)

        try box.ok("budget", "set", "--db", "r.db", "512KiB", "--keep-unread", "36h")
        try expectBudget(bytes: 524_288, keep: 36 * 3600)
        // Without --keep-unread the current setting stays.
        let tiny = try box.ok("budget", "set", "--db", "r.db", "1KB")
        #expect(tiny.lines.first == "storage budget: 1.0 KB (1,000 bytes); unread articles younger than 36 hours keep their body", "\(tiny)")
        #expect(tiny.lines.dropFirst().first?.contains("over budget; `readersync evict`") == true, "\(tiny)")
        try expectBudget(bytes: 1000, keep: 36 * 3600)
        shown = try #require(try parseJSON(try box.ok("budget", "show", "--db", "r.db", "--json")) as? [String: Any])
        #expect(shown["overBudget"] as? Bool == true)
        #expect(try box.ok("budget", "show", "--db", "r.db").lines.dropFirst().first?.contains("over budget by") == true)
        let status = try box.status("r.db")
        #expect((status["storageBudget"] as? [String: Any])?["bytes"] as? Int == 1000)

        // Refusals name the value and change nothing.
        expectError(try box.run("budget", "set", "--db", "r.db", "50XB"), mentions: ["'50XB'", "unknown unit"])
        expectError(try box.run("budget", "set", "--db", "r.db", "lots"), mentions: ["'lots' is not a size"])
        expectError(try box.run("budget", "set", "--db", "r.db", "50MB", "--keep-unread", "7y"), mentions: ["'7y'", "duration"])
        try expectBudget(bytes: 1000, keep: 36 * 3600)

        #expect(try box.ok("budget", "clear", "--db", "r.db").stdout
                == "cleared the storage budget (was 1.0 KB); bodies are no longer evicted\n")
        shown = try #require(try parseJSON(try box.ok("budget", "show", "--db", "r.db", "--json")) as? [String: Any])
        #expect(shown["budget"] is NSNull)
        #expect(try box.status("r.db")["storageBudget"] is NSNull)
        #expect(try box.ok("budget", "clear", "--db", "r.db").stdout == "no storage budget was set\n")
    }

    private func expectBudget(bytes: Int, keep: Double, db: String = "r.db",
                              sourceLocation: SourceLocation = #_sourceLocation) throws {
        let shown = try #require(try parseJSON(try box.ok("budget", "show", "--db", db, "--json")) as? [String: Any],
                                 sourceLocation: sourceLocation)
        let budget = try #require(shown["budget"] as? [String: Any], "\(shown)", sourceLocation: sourceLocation)
        #expect(budget["bytes"] as? Int == bytes, "\(budget)", sourceLocation: sourceLocation)
        #expect(budget["keepUnreadFor"] as? Double == keep, "\(budget)", sourceLocation: sourceLocation)
    }

    // MARK: - evict

    @Test("evict without a budget says so and evicts nothing")
    func evictWithoutBudget() throws {
        try box.replicaWithFixture("r.db")
        let result = try box.ok("evict", "--db", "r.db")
        #expect(result.stdout == "no storage budget is set, so nothing was evicted; `readersync budget set SIZE` sets one\n")
        let json = try #require(try parseJSON(try box.ok("evict", "--db", "r.db", "--json")) as? [String: Any])
        let eviction = try #require(json["eviction"] as? [String: Any])
        #expect(eviction["budget"] is NSNull)
        #expect(eviction["evicted"] as? Int == 0)
        #expect(try box.status("r.db")["bodiesNotHeld"] as? Int == 0)
    }

    @Test("evict on a synced replica: show says 'evicted', search finds it by title only, and sync brings it back")
    func evictThenSyncBack() throws {
        // Bodies imported on a replica stay until a peer holds them: import into a, sync to b, evict on b.
        try box.replicaWithFixture("a.db")
        try box.ok("init", "--db", "b.db", "--account", "alice")
        try box.ok("sync", "--db", "a.db", "b.db")
        for id in FixtureIDs.all { try box.ok("read", "--db", "b.db", id) }
        #expect(try box.ok("show", "--db", "b.db", FixtureIDs.main).stdout.contains(Self.mainBodyStart))

        try box.ok("budget", "set", "--db", "b.db", "1KB")
        let evicted = try box.ok("evict", "--db", "b.db")
        #expect(evicted.lines.first?.hasPrefix("evicted 4 bodies (") == true, "\(evicted)")
        #expect(evicted.lines.first?.contains(" → ") == true, "\(evicted)")
        #expect(evicted.lines.dropFirst().first?.hasPrefix("still over the budget of 1.0 KB") == true,
                "a replica file is never 1 KB: \(evicted)")
        #expect(try box.status("b.db")["bodiesNotHeld"] as? Int == 4)
        #expect(try box.status("a.db")["bodiesNotHeld"] as? Int == 0, "eviction is replica-local")
        #expect(try box.dump("a.db") != box.dump("b.db"), "b's dump has no bodies now")

        let shown = try box.ok("show", "--db", "b.db", FixtureIDs.main)
        #expect(!shown.stdout.contains(Self.mainBodyStart), "\(shown)")
        #expect(shown.lines.contains("[body evicted: this replica dropped it to stay within its storage budget]"), "\(shown)")
        #expect(shown.stdout.contains("`readersync sync --db b.db OTHER.db`") && shown.stdout.contains("`readersync fetch-bodies`"),
                "\(shown)")
        let detail = try #require(try parseJSON(try box.ok("show", "--db", "b.db", "--json", FixtureIDs.main)) as? [String: Any])
        #expect(detail["bodyState"] as? String == "evicted")
        #expect((detail["article"] as? [String: Any])?["body"] as? String == "")

        // The body is no longer searched; the title still is, and the hit says why.
        #expect(try box.ok("search", "--db", "b.db", "pentagon").stdout == "(no articles match pentagon)\n")
        let byTitle = try box.ok("search", "--db", "b.db", "kremlin")
        #expect(hitIDs(byTitle) == [FixtureIDs.main], "\(byTitle)")
        #expect(byTitle.lines.contains("  (body evicted — found by title, byline or source)"), "\(byTitle)")
        #expect(try jsonHits("--db", "b.db", "kremlin").first?["bodyState"] as? String == "evicted")

        // Evicting again finds nothing left to evict.
        #expect(try box.ok("evict", "--db", "b.db", FixtureIDs.main).stdout
                == "the body of \(FixtureIDs.main) is not held here already (evicted); nothing to evict\n")

        // Without the budget (else the sync would evict again), a sync with a brings every body back.
        try box.ok("budget", "clear", "--db", "b.db")
        let synced = try box.ok("sync", "--db", "b.db", "a.db")
        #expect(synced.lines.contains("got back 4 bodies from a.db that this replica did not hold"), "\(synced)")
        #expect(try box.status("b.db")["bodiesNotHeld"] as? Int == 0)
        let back = try box.ok("show", "--db", "b.db", FixtureIDs.main)
        #expect(back.stdout.contains(Self.mainBodyStart), "\(back)")
        #expect(!back.stdout.contains("evicted"), "\(back)")
        #expect(try box.dump("a.db") == box.dump("b.db"))
        #expect(hitIDs(try box.ok("search", "--db", "b.db", "pentagon")) == [FixtureIDs.main], "the body is indexed again")
    }

    @Test("sync prints the eviction a budget causes, and --json carries it")
    func syncReportsEviction() throws {
        try box.replicaWithFixture("a.db")
        try box.ok("init", "--db", "b.db", "--account", "alice")
        try box.ok("sync", "--db", "a.db", "b.db")
        for id in FixtureIDs.all { try box.ok("read", "--db", "b.db", id) }
        try box.ok("budget", "set", "--db", "b.db", "1KB")
        // b's read states go to a; b then enforces its budget.
        let synced = try box.ok("sync", "--db", "b.db", "a.db")
        let line = try #require(synced.lines.first { $0.hasPrefix("storage budget of b.db: evicted 4 bodies (") }, "\(synced)")
        #expect(line.hasSuffix(", budget 1.0 KB, still over budget)"), "\(line)")
        #expect(!synced.stdout.contains("storage budget of a.db"), "a has no budget: \(synced)")
        #expect(try box.status("b.db")["bodiesNotHeld"] as? Int == 4)

        // With the budget in force, the next sync does not bring back what the budget evicted (no churn).
        let again = try box.ok("sync", "--db", "b.db", "a.db", "--json")
        let json = try #require(try parseJSON(again) as? [String: Any])
        #expect(json["bodiesReceived"] as? Int == 0, "\(json)")
        #expect(json["bodiesSent"] as? Int == 0, "\(json)")
        #expect((json["eviction"] as? [String: Any])?["evicted"] as? Int == 0, "\(json)")
        #expect(try box.status("b.db")["bodiesNotHeld"] as? Int == 4)
        #expect(((json["peerEviction"] as? [String: Any])?["budget"]) is NSNull, "\(json)")
    }

    @Test("evicting one body: a saved article and a body no peer holds yet are refused with a reason")
    func evictOneArticle() throws {
        try box.replicaWithFixture("a.db")
        // Imported here and never synced: it may be the only copy.
        let before = try box.dump("a.db")
        expectError(try box.run("evict", "--db", "a.db", FixtureIDs.main), mentions: ["no peer has acknowledged", "sync"])
        #expect(try box.dump("a.db") == before)
        expectError(try box.run("evict", "--db", "a.db", "no-such-article"), mentions: ["no article with id 'no-such-article'"])

        try box.ok("init", "--db", "b.db", "--account", "alice")
        try box.ok("sync", "--db", "a.db", "b.db")
        try box.ok("save", "--db", "b.db", FixtureIDs.gaza)
        expectError(try box.run("evict", "--db", "b.db", FixtureIDs.gaza), mentions: [FixtureIDs.gaza, "is saved", "unsave"])
        #expect(try box.status("b.db")["bodiesNotHeld"] as? Int == 0)

        // Unread, not saved, received from a: evicted whatever the budget (there is none).
        let one = try box.ok("evict", "--db", "b.db", FixtureIDs.stocks)
        #expect(one.stdout.hasPrefix("evicted the body of \(FixtureIDs.stocks) ("), "\(one)")
        let json = try #require(try parseJSON(try box.ok("evict", "--db", "b.db", FixtureIDs.hamas, "--json")) as? [String: Any])
        #expect(json["article"] as? String == FixtureIDs.hamas)
        let eviction = try #require(json["eviction"] as? [String: Any])
        #expect(eviction["evicted"] as? Int == 1)
        #expect((eviction["evictedBodyBytes"] as? Int).map { $0 > 1000 } == true, "\(eviction)")
        #expect(try box.status("b.db")["bodiesNotHeld"] as? Int == 2)
        let status = try box.ok("status", "--db", "b.db")
        #expect(status.lines.contains("bodies not held: 2"), "\(status)")
        #expect(status.lines.contains("storage budget: none"), "\(status)")
        #expect(status.lines.contains { $0.hasPrefix("search index: ") }, "\(status)")
    }
}
