import Foundation
import ReaderSync
import Testing

/// The README's "Embedding the library" example, verbatim but for the directory, so it keeps compiling and
/// working; a second test checks that the README still shows exactly this code.
@Suite("README example")
struct ReadmeExampleTests {
    @Test("the embedding example runs: async calls, a live query, and the laptop ends with the phone's article, read state and comment")
    func embeddingExample() async throws {
        let box = try Sandbox()

        // --- README example ---
        let directory = box.directory
        let phone = try await Replica.openOrCreate(at: directory.appendingPathComponent("phone.db"), account: "alice")
        let laptop = try await Replica.openOrCreate(at: directory.appendingPathComponent("laptop.db"), account: "alice")

        let screen = Task {
            for try await items in laptop.observeFeed(FeedQuery()) {
                print(items.map { "\($0.article.title): \($0.readState.isRead ? "read" : "unread"), \($0.commentCount) comments" })
                if items.first?.commentCount == 1 { return items }   // the example stops here; a screen keeps listening
            }
            return []
        }

        try await phone.upsertArticles([
            Article(id: "hello-offline", source: "Example Wire", title: "Hello, offline world",
                    body: "Everything works without a network.", topics: ["tech"]),
        ])
        try await phone.markRead("hello-offline")
        try await phone.addComment(to: "hello-offline", body: "Written on the train.")

        let report = try await phone.sync(with: laptop)        // both directions; cancel the task to stop it
        print("sent \(report.sent.changes) changes (\(report.sent.bytes) bytes)")

        let shown = try await screen.value
        let thread = try await laptop.article("hello-offline").comments        // replies nested under their parents
        // --- end of the example ---

        #expect(report.sent.changes == 4, "article, read, 2 comment entries")
        #expect(report.sent.applied == 4)
        #expect(shown.count == 1)
        #expect(shown.first?.article.title == "Hello, offline world")
        #expect(shown.first?.readState.isRead == true)
        #expect(thread.first?.comment.body == "Written on the train.")
        #expect(thread.first?.comment.author == "alice")
        await #expect(try phone.canonicalDump() == laptop.canonicalDump())

        // The reopened file holds the same state.
        await #expect(try Replica.open(at: box.path("laptop.db")).canonicalDump() == laptop.canonicalDump())
    }

    @Test("the README shows the code this test runs, line for line")
    func readmeMatches() throws {
        let readme = try String(contentsOf: CLIPaths.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let section = try #require(readme.range(of: "## Embedding the library\n").map { readme[$0.upperBound...] })
        let fence = try #require(section.range(of: "```swift\n"))
        let code = section[fence.upperBound...]
        let block = try #require(code.range(of: "```").map { code[..<$0.lowerBound] })
        let source = try String(contentsOfFile: #filePath, encoding: .utf8)
        let example = try #require(source.range(of: "// --- README example ---\n").map { source[$0.upperBound...] })
        let body = try #require(example.range(of: "// --- end of the example ---").map { example[..<$0.lowerBound] })
        // Code lines only: comments, blank lines, `import` and the directory differ on purpose.
        func lines(_ text: Substring) -> [String] {
            text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty && !$0.hasPrefix("//") && !$0.hasPrefix("import ") && !$0.hasPrefix("let directory =") }
        }
        #expect(lines(block) == lines(body))
    }
}

/// The README's `readersync` section: its session runs as written, and its command table names real commands.
@Suite("README: the readersync command")
struct ReadmeCommandTests {
    static let readme = CLIPaths.packageRoot.appendingPathComponent("README.md")

    /// The fenced block after the `<!-- readme-session` marker.
    static func session() throws -> String {
        let text = try String(contentsOf: readme, encoding: .utf8)
        let marker = try #require(text.range(of: "<!-- readme-session"))
        let rest = text[marker.upperBound...]
        let open = try #require(rest.range(of: "```sh\n"))
        let close = try #require(rest[open.upperBound...].range(of: "\n```"))
        return String(rest[open.upperBound..<close.lowerBound])
    }

    @Test("the first-session block runs as written, every command succeeding")
    func sessionRuns() throws {
        let box = try Sandbox()
        let fixtureDirectory = box.directory.appendingPathComponent("Tests/ReaderSyncTests/Fixtures")
        try FileManager.default.createDirectory(at: fixtureDirectory, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLIPaths.fixture, to: fixtureDirectory.appendingPathComponent("news-page.json"))
        let binary = try #require(CLIPaths.binary)
        let script = "set -e\nreadersync() { \(ProcessTools.shellQuoted(binary.path)) \"$@\"; }\n" + (try Self.session())
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script]
        process.currentDirectoryURL = box.directory
        process.environment = ["PATH": "/usr/bin:/bin", "HOME": box.directory.path, "USER": "tester",
                               "TMPDIR": box.directory.path, "LANG": "C.UTF-8"]
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "stdout:\n\(stdout)\nstderr:\n\(stderr)")
        #expect(stdout.contains("imported 4 articles: 4 new, 0 updated, 0 unchanged"))
        #expect(stdout.contains("Comments (1):"))
        #expect(stdout.contains("\"format\" : \"readersync-list/1\""))
        #expect(stderr.contains("more: --after ") && stderr.contains("(stopped at the limit of 3 entries)"),
                "log --limit 3 says where it stopped: \(stderr)")
    }

    /// The command words of the first cells of the table rows after `heading`, up to the first line that starts
    /// with `end`: "| `read ID`, `unread ID` |" names read and unread.
    static func tableCommands(_ text: String, after heading: String, until end: String) throws -> Set<String> {
        let section = try #require(text.range(of: heading).map { text[$0.upperBound...] }, "README has \(heading)")
        let table = section.split(separator: "\n").prefix { !$0.hasPrefix(end) }
        return Set(table.filter { $0.hasPrefix("| `") }.flatMap { line -> [String] in
            let cell = line.dropFirst(2).prefix { $0 != "|" }
            let quoted = cell.split(separator: "`", omittingEmptySubsequences: false).enumerated().filter { $0.offset % 2 == 1 }
            return quoted.compactMap { $0.element.split(separator: " ").first.map(String.init) }
        })
    }

    @Test("every command in the tables is a real command, and every command is in a table")
    func tableNamesRealCommands() throws {
        let text = try String(contentsOf: Self.readme, encoding: .utf8)
        // The main table, and the one of the search and storage-budget commands.
        let names = try Self.tableCommands(text, after: "### Commands", until: "**Pages.**")
            .union(Self.tableCommands(text, after: "## Search and storage budget (CLI)", until: "## "))
        let help = try Sandbox().run("--help").stdout
        let commands = Set(help.components(separatedBy: "SUBCOMMANDS:").last?.split(separator: "\n").compactMap { line -> String? in
            let trimmed = line.drop { $0 == " " }
            guard line.hasPrefix("  "), !line.hasPrefix("   "), let word = trimmed.split(separator: " ").first, word.first?.isLowercase == true else { return nil }
            return String(word)
        } ?? [])
        #expect(!commands.isEmpty, "\(help)")
        #expect(names.isSubset(of: commands), "table: \(names.sorted()), help: \(commands.sorted())")
        #expect(commands.subtracting(["help"]).isSubset(of: names), "help: \(commands.sorted()), table: \(names.sorted())")
    }
}
