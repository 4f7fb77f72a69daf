import Foundation
import Testing

/// Progress on stderr for the commands that can run long: on a terminal (redrawn in place), with --progress
/// (lines), never with --quiet, and never mixed into stdout.
@Suite("readersync: progress")
final class ProgressTests {
    let box: Sandbox
    init() throws { box = try Sandbox() }

    /// 1200 articles: more than two import batches, so intermediate reports happen too.
    private func writeFeed() throws {
        try box.write("feed.jsonl", pagingFeed(1200))
    }

    @Test("import --progress prints lines with counts, bytes and rates on stderr; stdout keeps the summary")
    func importProgressLines() throws {
        try box.ok("init", "--db", "r.db", "--account", "alice")
        try writeFeed()
        let size = try FileManager.default.attributesOfItem(atPath: box.path("feed.jsonl"))[.size] as? Int ?? 0
        let result = try box.run("import", "--db", "r.db", "feed.jsonl", "--progress")
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout == "imported 1200 articles: 1200 new, 0 updated, 0 unchanged\n", "\(result)")
        let last = try #require(result.stderrLines.last, "\(result)")
        #expect(last.hasPrefix("importing: 1,200 articles, "), "\(result)")
        #expect(last.contains(" of \(formatBytesLikeCLI(size)) (100%)"), "bytes read of the file's size: \(result)")
        #expect(last.contains(" articles/s, ") && last.contains("/s, done in "), "rates: \(result)")
        #expect(!result.stderr.contains("\u{1B}"), "no terminal codes when stderr is not a terminal")
    }

    @Test("without a terminal and without --progress, nothing but the summary is printed")
    func silentWhenNotATerminal() throws {
        try box.ok("init", "--db", "r.db", "--account", "alice")
        try writeFeed()
        try box.ok("import", "--db", "r.db", "feed.jsonl")
        try box.ok("bundle", "export", "--db", "r.db", "--all", "--out", "all.bundle")
    }

    @Test("bundle export, bundle import and sync PATH report each phase with --progress")
    func bundleAndSyncProgress() throws {
        try box.ok("init", "--db", "a.db", "--account", "alice")
        try writeFeed()
        try box.ok("import", "--db", "a.db", "feed.jsonl")

        let export = try box.run("bundle", "export", "--db", "a.db", "--all", "--out", "all.bundle", "--progress")
        #expect(export.status == 0, "\(export)")
        #expect(export.stdout.hasPrefix("wrote 1200 changes to all.bundle ("), "\(export)")
        let exported = try #require(export.stderrLines.last, "\(export)")
        #expect(exported.hasPrefix("exporting: 1,200 of 1,200 changes (100%), ") && exported.contains(" written, "), "\(export)")
        #expect(exported.contains("done in"), "\(export)")

        try box.ok("init", "--db", "b.db", "--account", "alice")
        let imported = try box.run("bundle", "import", "--db", "b.db", "all.bundle", "--progress")
        #expect(imported.status == 0, "\(imported)")
        #expect(imported.stdout == "merged 1200 new changes from all.bundle (1200 in bundle, 0 already held)\n")
        let applied = try #require(imported.stderrLines.last, "\(imported)")
        #expect(applied.hasPrefix("applying: 1,200 of 1,200 changes (100%), bundle of "), "\(imported)")

        try box.ok("init", "--db", "c.db", "--account", "alice")
        let sync = try box.run("sync", "--db", "c.db", "a.db", "--progress")
        #expect(sync.status == 0, "\(sync)")
        #expect(sync.lines.count == 2, "stdout has only the summary: \(sync)")
        let phases = Set(sync.stderrLines.compactMap { $0.split(separator: ":").first.map(String.init) })
        #expect(phases.isSuperset(of: ["sending, exporting", "sending, applying", "receiving, exporting", "receiving, applying"]),
                "\(sync)")
        #expect(sync.stderrLines.contains { $0.hasPrefix("receiving, applying: 1,200 of 1,200 changes (100%)") }, "\(sync)")
    }

    @Test("on a terminal the progress line is redrawn in place on stderr and erased before the summary")
    func terminalRedraw() throws {
        try box.ok("init", "--db", "r.db", "--account", "alice")
        try writeFeed()
        let run = try box.runOnTerminal("readersync import --db r.db feed.jsonl >summary.txt")
        #expect(run.status == 0, "\(run.terminal)")
        #expect(run.terminal.contains("\r\u{1B}[Kimporting: "), "redrawn with carriage return and erase-line: \(run.terminal.debugDescription)")
        #expect(run.terminal.hasSuffix("\r\u{1B}[K"), "erased at the end: \(run.terminal.debugDescription)")
        #expect(!run.terminal.contains("imported 1200"), "the summary goes to stdout, not the terminal's stderr")
        #expect(String(decoding: try box.bytes("summary.txt"), as: UTF8.self) == "imported 1200 articles: 1200 new, 0 updated, 0 unchanged\n")
    }

    @Test("--quiet silences progress even on a terminal; with --progress it is a usage error")
    func quiet() throws {
        try box.ok("init", "--db", "r.db", "--account", "alice")
        try writeFeed()
        let run = try box.runOnTerminal("readersync import --db r.db feed.jsonl --quiet >summary.txt")
        #expect(run.status == 0)
        #expect(run.terminal.isEmpty, "\(run.terminal.debugDescription)")
        let both = try box.run("import", "--db", "r.db", "feed.jsonl", "--quiet", "--progress")
        #expect(both.status == 64, "\(both)")
    }

    @Test("an error clears the progress line and prints one error line")
    func errorClearsLine() throws {
        try box.ok("init", "--db", "r.db", "--account", "alice")
        try box.write("bad.jsonl", pagingFeed(1100) + "{\"id\": \"broken\"\n")
        let run = try box.runOnTerminal("readersync import --db r.db bad.jsonl")
        #expect(run.status == 1)
        let visible = run.terminal.components(separatedBy: "\r\u{1B}[K").last ?? ""
        #expect(visible == "readersync: error: line 1101: not valid JSON (column 16: the line ends inside a value, expected ',' or '}' (JSON Lines holds one article per line))\r\n",
                "\(run.terminal.debugDescription)")
    }
}
