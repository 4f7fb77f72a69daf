import Foundation
import ReaderSync
import Testing

/// What a new user meets: versions, completions, messages that say what to do next, grammar, the list's columns.
@Suite("readersync: messages")
final class MessageTests {
    let box: Sandbox
    init() throws { box = try Sandbox() }

    /// The built `readersync-server`, next to `readersync`.
    static var serverBinary: URL? {
        guard let client = CLIPaths.binary else { return nil }
        let server = client.deletingLastPathComponent().appendingPathComponent("readersync-server")
        return FileManager.default.isExecutableFile(atPath: server.path) ? server : nil
    }

    @Test("--version prints the one version of both executables")
    func versions() throws {
        #expect(try box.ok("--version").stdout == "\(ReaderSyncVersion.current)\n")
        let server = try #require(Self.serverBinary, "readersync-server is built with the package")
        let process = Process()
        process.executableURL = server
        process.arguments = ["--version"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        process.waitUntilExit()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 0)
        #expect(output == "\(ReaderSyncVersion.current)\n")
    }

    @Test("completion prints a script for bash, zsh and fish; another shell is a usage error")
    func completions() throws {
        let bash = try box.ok("completion", "bash")
        #expect(bash.stdout.contains("complete -") && bash.stdout.contains("readersync"), "\(bash.stdout.prefix(200))")
        #expect(bash.stdout.contains("bundle"), "subcommands are completed")
        #expect(try box.ok("completion", "zsh").stdout.hasPrefix("#compdef readersync"))
        #expect(try box.ok("completion", "fish").stdout.contains("complete -c 'readersync'"))
        #expect(try box.run("completion", "powershell").status == 64)
    }

    @Test("sync with a URL scheme other than http(s) says it is not supported")
    func unsupportedScheme() throws {
        try box.ok("init", "--db", "r.db", "--account", "alice")
        expectError(try box.run("sync", "--db", "r.db", "ftp://example.org/replica.db"),
                    mentions: ["ftp:// is not supported", "http:// or https://"])
        expectError(try box.run("sync", "--db", "r.db", "HTTP://127.0.0.1:1"), mentions: ["needs a token"])
    }

    @Test("show counts deleted comments apart and never says 'none yet' above one")
    func showDeletedComment() throws {
        try box.replicaWithFixture("r.db")
        let only = try box.addComment("r.db", FixtureIDs.hamas, "Soon deleted")
        try box.ok("comment", "delete", "--db", "r.db", only)
        let shown = try box.ok("show", "--db", "r.db", FixtureIDs.hamas)
        #expect(!shown.stdout.contains("none yet"), "\(shown)")
        #expect(shown.lines.suffix(2) == ["Comments (0, and 1 deleted):", "  - [deleted] (\(only))"], "\(shown)")
    }

    @Test("counts of one are singular: 1 article, 1 change, 1 comment, 1 entry")
    func singular() throws {
        try box.ok("init", "--db", "a.db", "--account", "alice")
        try box.ok("init", "--db", "b.db", "--account", "alice")
        try box.write("one.jsonl", #"{"id":"one","source":"Wire","title":"One","body":"B"}"# + "\n")
        #expect(try box.ok("import", "--db", "a.db", "one.jsonl").stdout == "imported 1 article: 1 new, 0 updated, 0 unchanged\n")
        let sync = try box.ok("sync", "--db", "a.db", "b.db")
        #expect(sync.lines.first?.hasPrefix("sent 1 change (") == true, "\(sync)")
        #expect(sync.lines.last?.hasPrefix("received 0 changes (") == true, "\(sync)")
        _ = try box.addComment("a.db", "one", "Hi")
        #expect(try box.ok("list", "--db", "a.db").stdout.contains("  [1 comment]"))
        try box.write("none.json", "[]")
        try box.ok("init", "--db", "c.db", "--account", "alice")
        try box.ok("import", "--db", "c.db", "one.jsonl")
        #expect(try box.ok("status", "--db", "c.db").lines.contains { $0.hasPrefix("change log: 1 entry retained") })
        #expect(try box.ok("bundle", "export", "--db", "c.db", "--all", "--out", "c.bundle").stdout.hasPrefix("wrote 1 change to c.bundle ("))
        #expect(try box.ok("bundle", "import", "--db", "b.db", "c.bundle").stdout == "merged 1 new change from c.bundle (1 in bundle, 0 already held)\n")
    }

    @Test("list shows the publication (else update) date of each article")
    func listDates() throws {
        try box.ok("init", "--db", "r.db", "--account", "alice")
        try box.write("dated.jsonl", """
            {"id":"p","source":"Wire","title":"Published","body":"B","publishedAt":"2025-07-03T23:30:00-02:00"}
            {"id":"u","source":"Wire","title":"Updated only","body":"B","updatedAt":"2025-06-30T08:00:00Z"}
            {"id":"n","source":"Wire","title":"No date","body":"B"}

            """)
        try box.ok("import", "--db", "r.db", "dated.jsonl")
        #expect(try box.ok("list", "--db", "r.db").lines == [
            "unread             2025-07-04  p  Wire: Published",
            "unread             2025-06-30  u  Wire: Updated only",
            "unread             (no date)   n  Wire: No date",
        ])
    }

    @Test("--source and --topic match in any letter case")
    func caseInsensitiveFilters() throws {
        try box.replicaWithFixture("r.db")
        #expect(try box.ok("list", "--db", "r.db", "--source", "associated PRESS").lines.count == 1)
        #expect(try box.ok("list", "--db", "r.db", "--source", "CANADA news.net").lines.count == 2)
        try box.write("topics.jsonl", #"{"id":"t","source":"Süddeutsche","title":"T","body":"B","topics":["Économie"]}"# + "\n")
        try box.ok("import", "--db", "r.db", "topics.jsonl")
        #expect(try box.ok("list", "--db", "r.db", "--topic", "économie").lines.count == 1)
        #expect(try box.ok("list", "--db", "r.db", "--source", "SÜDDEUTSCHE").lines.count == 1)
    }

    @Test("a bundle with read state says who may import it; another account's device is told how to get one")
    func crossAccountBundle() throws {
        try box.replicaWithFixture("phone.db")
        try box.ok("read", "--db", "phone.db", FixtureIDs.main)
        let export = try box.ok("bundle", "export", "--db", "phone.db", "--all", "--out", "all.bundle")
        #expect(export.lines.last == "note: it carries alice's read state, so only devices of alice can import it; "
                + "for a device of another account, export with --shared-only, or with --for its knowledge file", "\(export)")
        try box.ok("init", "--db", "bob.db", "--account", "bob")
        expectError(try box.run("bundle", "import", "--db", "bob.db", "all.bundle"),
                    mentions: ["all.bundle carries read state of account 'alice'", "this replica belongs to 'bob'",
                               "--shared-only", "--for"])
        let shared = try box.ok("bundle", "export", "--db", "phone.db", "--all", "--shared-only", "--out", "shared.bundle")
        #expect(shared.lines.count == 1, "no note without read state: \(shared)")
        try box.ok("bundle", "import", "--db", "bob.db", "shared.bundle")
    }

    // MARK: - With a server

    /// A running `readersync-server` on 127.0.0.1 with account alice; stopped with SIGTERM at the end.
    final class LiveServer {
        let process = Process()
        let url: String
        let token: String

        init(box: Sandbox) throws {
            let binary = try #require(MessageTests.serverBinary)
            let add = Process()
            add.executableURL = binary
            add.arguments = ["account", "add", "alice", "--role", "editor", "--db", box.path("server.db")]
            let addOut = Pipe()
            add.standardOutput = addOut
            try add.run()
            add.waitUntilExit()
            let added = String(decoding: addOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            token = try #require(added.split(whereSeparator: \.isWhitespace).last.map(String.init), "\(added)")

            process.executableURL = binary
            process.arguments = ["serve", "--db", box.path("server.db"), "--host", "127.0.0.1", "--port", "0"]
            let out = Pipe()
            process.standardOutput = out
            process.standardError = FileHandle.nullDevice
            try process.run()
            var seen = Data()
            let deadline = Date().addingTimeInterval(60)
            var found: String?
            while found == nil && Date() < deadline {
                let chunk = out.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                seen.append(chunk)
                let text = String(decoding: seen, as: UTF8.self)
                if let range = text.range(of: #"listening on http://[^ \n]+"#, options: .regularExpression) {
                    found = String(text[range].dropFirst("listening on ".count))
                }
            }
            url = try #require(found, "the server did not start: \(String(decoding: seen, as: UTF8.self))")
        }

        deinit {
            if process.isRunning {
                process.terminate()
                process.waitUntilExit()
            }
        }
    }

    @Test("server sync: a rejected token says to get a new one; --progress shows pages; --json matches its schema",
          .timeLimit(.minutes(10)))
    func serverSync() throws {
        let server = try LiveServer(box: box)
        try box.replicaWithFixture("r.db")
        expectError(try box.run("sync", "--db", "r.db", server.url, "--token", "rst_not-a-real-token"),
                    mentions: ["rejected the token", "get a new token from the server's operator", "--token"])

        let synced = try box.run("sync", "--db", "r.db", server.url, "--token", server.token, "--progress", "--json")
        #expect(synced.status == 0, "\(synced)")
        #expect(synced.stderrLines.contains { $0.hasPrefix("pushing: 1 page, 4 changes, ") && $0.contains("done in") }, "\(synced)")
        #expect(synced.stderrLines.contains { $0.hasPrefix("pulling: 1 page, ") }, "\(synced)")
        let schemas = try JSONSchemaValidator(directory: JSONShapeTests.schemaDirectory)
        let errors = schemas.validate(try parseJSONValue(synced.stdoutData), against: "sync.schema.json")
        #expect(errors.isEmpty, "\(errors)")
        let json = try #require(try JSONSerialization.jsonObject(with: synced.stdoutData) as? [String: Any])
        #expect(json["kind"] as? String == "server")
        #expect((json["sent"] as? [String: Any])?["applied"] as? Int == 4)

        let quiet = try box.ok("sync", "--db", "r.db", server.url, "--token", server.token)
        #expect(quiet.lines.first?.hasPrefix("sent 0 changes (") == true, "\(quiet)")

        // A second device evicts a body and gets it back from the server, checked against its digest.
        try box.ok("init", "--db", "d.db", "--account", "alice")
        try box.ok("sync", "--db", "d.db", server.url, "--token", server.token)
        try box.ok("evict", "--db", "d.db", FixtureIDs.main)
        #expect(try box.ok("show", "--db", "d.db", FixtureIDs.main).stdout.contains("evicted"))
        let fetched = try box.run("fetch-bodies", "--db", "d.db", server.url, "--token", server.token, "--json")
        #expect(fetched.status == 0, "\(fetched)")
        #expect(schemas.validate(try parseJSONValue(fetched.stdoutData), against: "fetch-bodies.schema.json").isEmpty)
        let answer = try #require(try JSONSerialization.jsonObject(with: fetched.stdoutData) as? [String: Any])
        #expect(answer["filled"] as? Int == 1 && answer["rejected"] as? Int == 0)
        #expect(try !box.ok("show", "--db", "d.db", FixtureIDs.main).stdout.contains("evicted"))
        #expect(try box.dump("d.db") == box.dump("r.db"))
        expectError(try box.run("fetch-bodies", "--db", "d.db", "ftp://example.org", "--token", "x"), mentions: ["http://"])
    }

    @Test("server sync --progress: a pull of several pages shows changes of the total and a percentage",
          .timeLimit(.minutes(10)))
    func serverSyncPullFraction() throws {
        let server = try LiveServer(box: box)
        try box.ok("init", "--db", "editor.db", "--account", "alice")
        try box.write("feed.jsonl", pagingFeed(2_500))
        try box.ok("import", "--db", "editor.db", "feed.jsonl")
        try box.ok("sync", "--db", "editor.db", server.url, "--token", server.token)
        // A new device pulls the 2,500 articles in pages of 2,000 (the server's default).
        try box.ok("init", "--db", "phone.db", "--account", "alice")
        let synced = try box.run("sync", "--db", "phone.db", server.url, "--token", server.token, "--progress")
        #expect(synced.status == 0, "\(synced)")
        #expect(synced.stderrLines.contains { $0.hasPrefix("pulling: 1 page, 2,000 of 2,500 changes (80%), ") }, "\(synced)")
        #expect(synced.stderrLines.contains { $0.hasPrefix("pulling: 2 pages, 2,500 changes, ") && $0.contains("done in") },
                "\(synced)")
        #expect(try box.dump("phone.db") == box.dump("editor.db"))
    }
}
