import Foundation
import Testing

/// Articles for paging tests, as JSON Lines: `count` articles with dates that tie in threes (so pages must break
/// ties by id) and every tenth without a date (sort key 0, at the end of the feed).
func pagingFeed(_ count: Int, idPrefix: String = "a", startDay: Int = 1) -> String {
    precondition(startDay + count / 3 < 24 * 60, "minutes of one day")
    return (0..<count).map { i in
        let id = "\(idPrefix)\(String(format: "%04d", i))"
        let minute = startDay + i / 3  // one minute of 2025-07-01 per three articles
        let date = i % 10 == 9 ? "" : String(format: #","publishedAt":"2025-07-01T%02d:%02d:00Z""#, minute / 60, minute % 60)
        return #"{"id":"\#(id)","source":"\#(i % 2 == 0 ? "Wire" : "Courier")","title":"Story \#(i)","body":"Text \#(i)","topics":["t\#(i % 3)"]\#(date)}"#
    }.joined(separator: "\n") + "\n"
}

/// `list --limit/--after` and `log --limit/--after`: cursors, hints, and what a terminal and a pipe get.
@Suite("readersync: paging")
final class PagingTests {
    let box: Sandbox
    init() throws { box = try Sandbox() }

    private func replica(articles: Int) throws {
        try box.ok("init", "--db", "r.db", "--account", "alice")
        try box.write("feed.jsonl", pagingFeed(articles))
        try box.ok("import", "--db", "r.db", "feed.jsonl")
    }

    /// The article ids of a `list --json` document, and its `next`.
    private func page(_ args: String...) throws -> (ids: [String], next: String?) {
        let result = try box.start(["list", "--db", "r.db", "--json"] + args).finish()
        let document = try #require(try parseJSON(result) as? [String: Any], "\(result)")
        let items = try #require(document["items"] as? [[String: Any]])
        return (items.compactMap { ($0["article"] as? [String: Any])?["id"] as? String }, document["next"] as? String)
    }

    @Test("list --limit and --after walk the whole feed: in feed order, nothing twice, nothing missed")
    func listPagesThroughFeed() throws {
        try replica(articles: 120)
        let all = try page().ids
        #expect(all.count == 120)
        #expect(Set(all).count == 120)

        var walked: [String] = []
        var cursor: String?
        var pages = 0
        repeat {
            let next = try cursor.map { try page("--limit", "25", "--after", $0) } ?? page("--limit", "25")
            walked += next.ids
            cursor = next.next
            pages += 1
        } while cursor != nil && pages < 10
        #expect(pages == 5)
        #expect(walked == all, "paging gives the same order as one listing")

        // Feed order: newest first, ties (three articles a day) by id, undated (sort key 0) last by id.
        let expected = (0..<120).sorted { a, b in
            let dayA = a % 10 == 9 ? -1 : a / 3, dayB = b % 10 == 9 ? -1 : b / 3
            return dayA != dayB ? dayA > dayB : a < b
        }.map { String(format: "a%04d", $0) }
        #expect(all == expected)
    }

    @Test("text pages end with a 'more: --after CURSOR' line on stderr, and the last page with none")
    func listTextHint() throws {
        try replica(articles: 30)
        let first = try box.run("list", "--db", "r.db", "--limit", "20")
        #expect(first.status == 0)
        #expect(first.lines.count == 20, "\(first)")
        #expect(first.stderrLines.count == 1, "\(first)")
        let hint = try #require(first.stderrLines.first)
        #expect(hint.hasPrefix("more: --after f1."), "\(hint)")
        #expect(hint.hasSuffix(" (stopped at the limit of 20 articles)"), "\(hint)")
        let cursor = String(hint.dropFirst("more: --after ".count).prefix { $0 != " " })

        let second = try box.ok("list", "--db", "r.db", "--limit", "20", "--after", cursor)
        #expect(second.lines.count == 10, "\(second)")
        #expect(Set(second.lines).isDisjoint(with: Set(first.lines)))
    }

    @Test("on a terminal list shows 50 articles and the hint; through a pipe it prints the whole feed")
    func listTerminalDefault() throws {
        try replica(articles: 60)
        let terminal = try box.runOnTerminal("readersync list --db r.db 2>hint.txt")
        #expect(terminal.status == 0, "\(terminal.terminal)")
        let rows = terminal.terminal.components(separatedBy: "\r\n").filter { $0.hasPrefix("unread") }
        #expect(rows.count == 50, "\(terminal.terminal)")
        let hint = String(decoding: try box.bytes("hint.txt"), as: UTF8.self)
        #expect(hint.hasPrefix("more: --after f1.") && hint.hasSuffix("(stopped at the limit of 50 articles)\n"), "\(hint)")

        let piped = try box.ok("list", "--db", "r.db")
        #expect(piped.lines.count == 60, "no limit when stdout is not a terminal")
        #expect(piped.stderr.isEmpty)
    }

    @Test("a cursor keeps its place when newer articles arrive between pages")
    func cursorSurvivesInserts() throws {
        try replica(articles: 40)
        let before = try page().ids
        let first = try page("--limit", "15")
        try box.write("newer.jsonl", pagingFeed(9, idPrefix: "n", startDay: 200))  // all dated: they sort first
        try box.ok("import", "--db", "r.db", "newer.jsonl")
        var rest: [String] = []
        var cursor = first.next
        while let after = cursor {
            let next = try page("--limit", "15", "--after", after)
            rest += next.ids
            cursor = next.next
        }
        #expect(first.ids + rest == before, "the newer articles sort before the cursor and do not shift later pages")
    }

    @Test("list --json items carry no body unless --with-body")
    func listBodies() throws {
        try box.replicaWithFixture("r.db")
        let plain = try #require(try parseJSON(try box.ok("list", "--db", "r.db", "--json")) as? [String: Any])
        #expect(plain["withBody"] as? Bool == false)
        for item in plain["items"] as? [[String: Any]] ?? [] {
            #expect((item["article"] as? [String: Any])?.keys.contains("body") == false)
        }
        let full = try #require(try parseJSON(try box.ok("list", "--db", "r.db", "--json", "--with-body")) as? [String: Any])
        #expect(full["withBody"] as? Bool == true)
        let bodies = (full["items"] as? [[String: Any]] ?? []).compactMap { ($0["article"] as? [String: Any])?["body"] as? String }
        #expect(bodies.count == 4)
        #expect(bodies.contains { $0.hasPrefix("MOSCOW — U.S. President Donald Trump") })
    }

    @Test("a bad cursor, a cursor of the other command, or --limit 0 is a usage error")
    func badPagingArguments() throws {
        try box.replicaWithFixture("r.db")
        for args in [["list", "--after", "nonsense"], ["list", "--after", "12"], ["list", "--limit", "0"],
                     ["list", "--with-body"], ["log", "--after", "f1.MTAKYQ"], ["log", "--after", "-3"], ["log", "--limit", "-1"]] {
            let result = try box.start(args + ["--db", "r.db"]).finish()
            #expect(result.status == 64, "\(result)")
            #expect(result.stdout.isEmpty, "\(result)")
        }
    }

    // MARK: - log

    @Test("log --limit and --after page the change log and say where they stopped")
    func logPages() throws {
        try replica(articles: 25)
        // The first column is the cursor (HLC-ORIGIN-SEQ); the third is origin#seq ("local#n" for this replica's).
        func seq(_ line: String?) -> String? { line?.components(separatedBy: "\t").dropFirst(2).first }
        func cursor(_ line: String?) -> String { line?.components(separatedBy: "\t").first ?? "" }
        let first = try box.run("log", "--db", "r.db", "--limit", "10")
        #expect(first.status == 0)
        #expect(first.lines.count == 10)
        #expect(seq(first.lines.first) == "local#1" && seq(first.lines.last) == "local#10", "\(first)")
        let tenth = cursor(first.lines.last)
        #expect(tenth.hasSuffix("-10"))
        #expect(first.stderrLines == ["more: --after \(tenth) (stopped at the limit of 10 entries)"], "\(first)")

        let second = try box.run("log", "--db", "r.db", "--limit", "10", "--after", tenth)
        #expect(seq(second.lines.first) == "local#11", "\(second)")
        let twentieth = cursor(second.lines.last)
        #expect(second.stderrLines == ["more: --after \(twentieth) (stopped at the limit of 10 entries)"], "\(second)")

        let last = try box.ok("log", "--db", "r.db", "--limit", "10", "--after", twentieth)
        #expect(last.lines.count == 5, "the end: no hint")
        let exact = try box.ok("log", "--db", "r.db", "--limit", "5", "--after", twentieth)
        #expect(exact.lines.count == 5, "a limit that ends exactly at the end gives no hint: \(exact)")
        let end = cursor(last.lines.last)
        #expect(try box.ok("log", "--db", "r.db", "--after", end).stdout == "(no entries after \(end))\n")

        let json = try #require(try parseJSON(try box.ok("log", "--db", "r.db", "--json", "--limit", "10")) as? [String: Any])
        #expect(json["next"] as? String == tenth)
        #expect((json["entries"] as? [Any])?.count == 10)
        let tail = try #require(try parseJSON(try box.ok("log", "--db", "r.db", "--json", "--after", twentieth)) as? [String: Any])
        #expect(tail["next"] is NSNull)
    }

    @Test("on a terminal log shows 50 entries and the hint; through a pipe every entry")
    func logTerminalDefault() throws {
        try replica(articles: 70)
        let terminal = try box.runOnTerminal("readersync log --db r.db 2>hint.txt")
        let rows = terminal.terminal.components(separatedBy: "\r\n").filter { $0.contains("\tarticle ") }
        #expect(rows.count == 50, "\(terminal.terminal)")
        let hint = String(decoding: try box.bytes("hint.txt"), as: UTF8.self)
        #expect(hint.hasPrefix("more: --after ") && hint.hasSuffix("-50 (stopped at the limit of 50 entries)\n"), "\(hint)")
        #expect(try box.ok("log", "--db", "r.db").lines.count == 70)
    }
}
