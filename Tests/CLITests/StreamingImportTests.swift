import Foundation
import Testing

/// `import` reads files of any size as a stream, in bounded memory, in one all-or-nothing transaction.
@Suite("readersync: streaming import")
final class StreamingImportTests {
    let box: Sandbox
    init() throws { box = try Sandbox() }

    /// Writes `count` JSON Lines articles with bodies of about `bodyBytes`, CRLF line ends, and returns the size.
    @discardableResult
    private func writeLargeFeed(_ name: String, count: Int, bodyBytes: Int) throws -> Int {
        let path = box.path(name)
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        let words = ["offline", "replica", "merge", "clock", "bundle", "reader", "article", "sync", "change", "log"]
        var paragraph = ""
        var i = 0
        while paragraph.utf8.count < bodyBytes {
            paragraph += words[i % words.count] + (i % 17 == 16 ? ". " : " ")
            i += 1
        }
        var chunk = ""
        var size = 0
        for n in 0..<count {
            chunk += #"{"id":"big-\#(n)","source":"Wire \#(n % 7)","title":"Large import \#(n)","publishedAt":"2025-07-01T10:00:00Z","topics":["scale"],"body":["\#(n) \#(paragraph)"]}"# + "\r\n"
            if chunk.utf8.count > 4 << 20 || n == count - 1 {
                let data = Data(chunk.utf8)
                try handle.write(contentsOf: data)
                size += data.count
                chunk = ""
            }
        }
        return size
    }

    @Test("a JSON Lines file larger than the old 256 MiB limit imports, with peak memory bounded",
          .timeLimit(.minutes(10)))
    func largerThanOldLimit() throws {
        try box.ok("init", "--db", "r.db", "--account", "alice")
        let count = 4_400
        let size = try writeLargeFeed("big.jsonl", count: count, bodyBytes: 64 << 10)
        #expect(size > 256 << 20, "the file must pass the old limit: \(size) bytes")
        let binary = try #require(CLIPaths.binary)
        let run = try ProcessTools.runMeasured(binary, ["import", "--db", "r.db", "big.jsonl"], in: box.directory,
                                               environment: ["PATH": "/usr/bin:/bin", "HOME": box.directory.path,
                                                             "TMPDIR": box.directory.path, "LANG": "C.UTF-8"])
        try FileManager.default.removeItem(atPath: box.path("big.jsonl"))
        #expect(run.status == 0, "\(run)")
        #expect(run.stdout == "imported \(count) articles: \(count) new, 0 updated, 0 unchanged\n", "\(run)")
        // Peak RSS is bounded by the 1 MiB read chunk, one batch of at most 8 MiB of articles and SQLite's page
        // cache, not by the file (270 MiB here).
        #expect(run.maxRSSKiB < 100 * 1024, "peak RSS \(run.maxRSSKiB / 1024) MiB for a \(size >> 20) MiB file")
        #expect(try box.status("r.db")["articles"] as? Int == count)
    }

    @Test("the page shape streams too: peak memory does not grow with the number of articles")
    func pageShapeBoundedMemory() throws {
        func pageFile(_ name: String, count: Int) throws -> Int {
            var text = "{\r\n  \"description\": \"a page\",\r\n  \"articles\": [\r\n"
            for n in 0..<count {
                let body = String(repeating: "words of an article \(n) ", count: 100)
                text += "    {\"id\": \"p\(n)\", \"source\": \"Wire\", \"title\": \"Page \(n)\", \"body\": [\"\(body)\"]}"
                text += n == count - 1 ? "\r\n" : ",\r\n"
            }
            text += "  ],\r\n  \"captured\": {\"by\": \"test\", \"pages\": [1, 2.5e3, -0.5, true, null]}\r\n}\r\n"
            try box.write(name, text)
            return text.utf8.count
        }
        let binary = try #require(CLIPaths.binary)
        let environment = ["PATH": "/usr/bin:/bin", "HOME": box.directory.path, "TMPDIR": box.directory.path]
        var peaks: [Int] = []
        for (name, count) in [("small.json", 200), ("large.json", 20_000)] {
            let size = try pageFile(name, count: count)
            try box.ok("init", "--db", "\(name).db", "--account", "alice")
            let run = try ProcessTools.runMeasured(binary, ["import", "--db", "\(name).db", name], in: box.directory,
                                                   environment: environment)
            #expect(run.status == 0, "\(run)")
            #expect(run.stdout == "imported \(count) articles: \(count) new, 0 updated, 0 unchanged\n", "\(run) (\(size) bytes)")
            peaks.append(run.maxRSSKiB)
        }
        // 100 times the articles (a 50 MiB page) may not cost more than a few MiB of extra memory.
        #expect(peaks[1] < peaks[0] + 24 * 1024, "peak RSS \(peaks.map { $0 / 1024 }) MiB for 200 and 20,000 articles")
    }

    @Test("an error deep in a large page names the article and the line, and imports nothing")
    func errorInPage() throws {
        try box.ok("init", "--db", "r.db", "--account", "alice")
        var lines = ["{\"articles\": ["]
        for n in 0..<3000 {
            let title = n == 2500 ? "" : ", \"title\": \"T\(n)\""
            lines.append("  {\"id\": \"e\(n)\", \"source\": \"S\"\(title), \"body\": \"B\"}\(n == 2999 ? "" : ",")")
        }
        lines.append("]}")
        try box.write("page.json", lines.joined(separator: "\n"))
        expectError(try box.run("import", "--db", "r.db", "page.json"), mentions: ["articles[2500].title: missing"])

        lines[1802] = "  {\"id\": \"e1801\", \"source\": \"S\" \"title\": \"T\", \"body\": \"B\"},"
        try box.write("page.json", lines.joined(separator: "\n"))
        expectError(try box.run("import", "--db", "r.db", "page.json"),
                    mentions: ["articles[1801]: not valid JSON (line 1803, column 33: expected ',' or '}'"])
        #expect(try box.status("r.db")["articles"] as? Int == 0)
        #expect(try box.status("r.db")["logEntries"] as? Int == 0)
    }

    @Test("CRLF line ends, blank lines, a byte order mark and a lone article object are accepted")
    func lineEndings() throws {
        try box.ok("init", "--db", "r.db", "--account", "alice")
        try box.write("crlf.jsonl", "\u{FEFF}{\"id\":\"c1\",\"source\":\"S\",\"title\":\"One\",\"body\":\"B\"}\r\n\r\n   \r\n"
                      + "{\"id\":\"c2\",\"source\":\"S\",\"title\":\"Two\",\"body\":\"B\\r\\nwith a CRLF inside\"}\r\n")
        #expect(try box.ok("import", "--db", "r.db", "crlf.jsonl").stdout == "imported 2 articles: 2 new, 0 updated, 0 unchanged\n")
        try box.write("one.json", "{\r\n  \"id\": \"c3\",\r\n  \"source\": \"S\",\r\n  \"title\": \"Three\",\r\n  \"body\": \"B\"\r\n}\r\n")
        #expect(try box.ok("import", "--db", "r.db", "one.json").stdout == "imported 1 article: 1 new, 0 updated, 0 unchanged\n")
        try box.write("array.json", "[\r\n{\"id\":\"c4\",\"source\":\"S\",\"title\":\"Four\",\"body\":\"B\"}\r\n]\r\n")
        #expect(try box.ok("import", "--db", "r.db", "array.json").stdout == "imported 1 article: 1 new, 0 updated, 0 unchanged\n")
        let articles = DumpParts(try box.dumpJSON("r.db")).articles
        #expect(articles.first { $0["id"] as? String == "c2" }?["body"] as? String == "B\r\nwith a CRLF inside")
    }

    @Test("fields the article model does not hold are reported, and refused with --strict")
    func unknownFields() throws {
        try box.ok("init", "--db", "r.db", "--account", "alice")
        try box.write("extra.jsonl", """
            {"id":"u1","source":"S","title":"One","body":"B","lang":"en"}
            {"id":"u2","source":"S","title":"Two","body":"B","lang":"fr","score":3}

            """)
        let strict = try box.run("import", "--db", "r.db", "extra.jsonl", "--strict")
        expectError(strict, mentions: ["line 1.lang: not a field of an article"])
        #expect(try box.status("r.db")["articles"] as? Int == 0)

        let lenient = try box.ok("import", "--db", "r.db", "extra.jsonl")
        #expect(lenient.stdout == """
            imported 2 articles: 2 new, 0 updated, 0 unchanged
            left out 2 fields the article model does not hold: lang (2 articles, first at line 1.lang), score (1 article, first at line 2.score); --strict refuses such files

            """, "\(lenient)")
        let json = try #require(try parseJSON(try box.ok("import", "--db", "r.db", "extra.jsonl", "--json")) as? [String: Any])
        let fields = try #require(json["unknownFields"] as? [[String: Any]])
        #expect(fields.compactMap { $0["name"] as? String } == ["lang", "score"])
        #expect(fields.first?["articles"] as? Int == 2)
    }

    @Test("an id given twice is refused, naming both places")
    func duplicateID() throws {
        try box.ok("init", "--db", "r.db", "--account", "alice")
        try box.write("dup.jsonl", """
            {"id":"d1","source":"S","title":"One","body":"B"}
            {"id":"d2","source":"S","title":"Two","body":"B"}
            {"id":"d1","source":"S","title":"One again","body":"B"}
            """)
        expectError(try box.run("import", "--db", "r.db", "dup.jsonl"), mentions: ["line 3.id: 'd1' appears twice (first at line 1)"])
        #expect(try box.status("r.db")["articles"] as? Int == 0)
    }

    @Test("re-importing an older version keeps the newer one and says so")
    func olderVersionKept() throws {
        try box.ok("init", "--db", "r.db", "--account", "alice")
        try box.write("v2.jsonl", #"{"id":"v","source":"S","title":"Corrected","body":"B","updatedAt":"2025-07-02T10:00:00Z"}"# + "\n")
        try box.write("v1.jsonl", #"{"id":"v","source":"S","title":"Original","body":"B","updatedAt":"2025-07-01T10:00:00Z"}"# + "\n")
        try box.ok("import", "--db", "r.db", "v2.jsonl")
        let log = try box.lastSequence("r.db")
        let older = try box.ok("import", "--db", "r.db", "v1.jsonl")
        #expect(older.stdout == "imported 1 article: 0 new, 0 updated, 0 unchanged, 1 older than the version held (kept the newer version)\n")
        #expect(try box.lastSequence("r.db") == log, "nothing recorded")
        #expect(DumpParts(try box.dumpJSON("r.db")).articles.first?["title"] as? String == "Corrected")
        let json = try #require(try parseJSON(try box.ok("import", "--db", "r.db", "v1.jsonl", "--json")) as? [String: Any])
        #expect(json["keptNewer"] as? Int == 1)
        #expect(json["updated"] as? Int == 0)
    }

    @Test("dates keep their meaning: offsets, fractions, and forms only the ISO 8601 formatter reads")
    func dates() throws {
        try box.ok("init", "--db", "r.db", "--account", "alice")
        try box.write("dates.jsonl", """
            {"id":"z","source":"S","title":"Zulu","body":"B","publishedAt":"2025-07-03T12:00:00Z"}
            {"id":"o","source":"S","title":"Offset","body":"B","publishedAt":"2025-07-03T14:30:00+02:30"}
            {"id":"f","source":"S","title":"Fraction","body":"B","publishedAt":"2025-07-03T12:00:00.5Z"}

            """)
        try box.ok("import", "--db", "r.db", "dates.jsonl")
        let articles = DumpParts(try box.dumpJSON("r.db")).articles
        func published(_ id: String) -> String? { articles.first { $0["id"] as? String == id }?["publishedAt"] as? String }
        #expect(published("z") == "2025-07-03T12:00:00.000Z")
        #expect(published("o") == "2025-07-03T12:00:00.000Z")
        #expect(published("f") == "2025-07-03T12:00:00.500Z")
        try box.write("bad-date.jsonl", #"{"id":"b","source":"S","title":"Bad","body":"B","publishedAt":"2025-02-30T12:00:00Z"}"# + "\n")
        expectError(try box.run("import", "--db", "r.db", "bad-date.jsonl"), mentions: ["line 1.publishedAt", "ISO 8601"])
    }
}
