import ArgumentParser
import Foundation
import ReaderSync

/// `readersync search QUERY`: full-text search over the articles this replica holds.
struct SearchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search", abstract: "Search the articles this replica holds (title, byline, source and body), best first.",
        discussion: """
            Query syntax:
              kremlin talks        words: all must match (AND is implied)
              "phone call"         a phrase, in double quotes
              ukrain*              a prefix: a '*' at the end of a word or phrase
              kremlin OR moscow    OR, AND and NOT in capitals; NOT binds
              talks NOT ukraine    tightest, then AND, then OR
              (kremlin OR moscow) talks
                                   parentheses group
            Case and accents do not matter: 'kremlin' finds "Kremlin", 'resume' \
            finds "résumé". A match in the title weighs most. An article whose body \
            was evicted is still found by its title, byline and source.

            Each hit shows its title, id, source, date, read state and a snippet with \
            the matched words in bold (on a terminal) or in [brackets].
            """)
    @OptionGroup var replica: ReplicaOptionsGroup
    @OptionGroup var output: OutputOptions
    @Flag(help: "Only unread articles.") var unread = false
    @Flag(help: "Only saved articles.") var saved = false
    @Option(help: "Only articles from this source (any letter case).") var source: String?
    @Option(help: ArgumentHelp("At most this many hits, 1 to 1000.", valueName: "n")) var limit = 20
    @Argument(help: ArgumentHelp("What to look for (see the query syntax above).", valueName: "query")) var query: String

    /// The most hits one search returns.
    static let maxLimit = 1000

    func validate() throws {
        guard (1...Self.maxLimit).contains(limit) else {
            throw ValidationError("--limit must be from 1 to \(Self.maxLimit), got \(limit)")
        }
    }

    func run() throws {
        try ReaderSync_CLI.run {
            let opened = try replica.open()
            let bold = !output.json && Terminal.isTerminal(.standardOutput)
            let options = SearchOptions(unreadOnly: unread, savedOnly: saved,
                                        source: try source.map { try Self.storedSource($0, in: opened) },
                                        limit: limit, highlight: bold ? ("\u{1B}[1m", "\u{1B}[22m") : ("[", "]"))
            let hits = try opened.search(query, options: options)
            if output.json { return try printJSON(SearchJSON(query: query, hits: hits.map(SearchHitJSON.init))) }
            var text = BufferedOutput()
            if hits.isEmpty { text.line("(no articles match \(query))") }
            for (index, hit) in hits.enumerated() {
                if index > 0 { text.line("") }
                for line in Self.lines(hit) { text.line(line) }
            }
            text.flush()
            if hits.count == limit {
                note("more may match: showing the best \(Format.count(limit, "hit")) (--limit raises it, up to \(Self.maxLimit))")
            }
        }
    }

    /// The source name as the replica stores it, for a name given in any letter case (the search matches it
    /// exactly; `list --source` takes any case, and so does this). A name no article has is returned as given.
    static func storedSource(_ name: String, in replica: Replica) throws -> String {
        let page = try replica.feedPage(FeedQuery(source: name), after: nil, limit: 1, includeBodies: false)
        return page.items.first?.article.source ?? name
    }

    /// A hit's lines:
    /// `Title`, `  id · Source · 2025-07-03 · unread, saved, 40% read`, `  …snippet…`, and a note when the body is
    /// not held.
    static func lines(_ hit: SearchHit) -> [String] {
        let state = hit.readState
        var flags = [state.isRead ? "read" : "unread"]
        if state.isSaved { flags.append("saved") }
        if state.progress > 0 { flags.append(String(format: "%.0f%% read", state.progress * 100)) }
        var about = [hit.id, hit.source]
        if let published = hit.publishedAt { about.append(Format.day(published)) }
        about.append(flags.joined(separator: ", "))
        var lines = [hit.title, "  " + about.joined(separator: " · ")]
        let snippet = hit.snippet.split(whereSeparator: \.isNewline).joined(separator: " ")
        if !snippet.isEmpty { lines.append("  " + snippet) }
        if hit.bodyState != .held {
            lines.append("  (body \(StorageText.bodyState(hit.bodyState)) — found by title, byline or source)")
        }
        return lines
    }
}
