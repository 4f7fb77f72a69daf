import ArgumentParser
import Foundation
import ReaderSync

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "init", abstract: "Create a new replica file.")
    @OptionGroup var replica: ReplicaOptionsGroup
    @Option(help: "The account (user name) this replica belongs to.")
    var account: String = ProcessInfo.processInfo.environment["USER"].flatMap { $0.isEmpty ? nil : $0 } ?? "reader"

    func run() throws {
        try ReaderSync_CLI.run {
            let created = try Replica.create(at: replica.path, account: account)
            say("created replica \(created.replicaID) for account \(account) at \(replica.path)")
        }
    }
}

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import articles: the page shape ({\"articles\": [...]}), a JSON array, or JSON Lines. All or nothing.",
        discussion: """
            The file is read as a stream (any size, in bounded memory) and recorded in one transaction: a bad line or \
            field is named (line 3: not valid JSON, articles[1].title: missing) and nothing is imported. Articles held \
            unchanged, or held in a newer version, record nothing. Fields the article model does not hold are \
            reported (or refused with --strict).
            """)
    @OptionGroup var replica: ReplicaOptionsGroup
    @OptionGroup var output: OutputOptions
    @OptionGroup var progress: ProgressOptions
    @Flag(help: "Refuse a file whose articles carry fields the article model does not hold (default: report them).")
    var strict = false
    @Argument(help: "The file to import.")
    var file: String

    func run() throws {
        try ReaderSync_CLI.run {
            let opened = try replica.open()
            let reader = try ArticleReader(contentsOf: URL(fileURLWithPath: file), rejectsUnknownFields: strict)
            let reporter = progress.reporter()
            let summary = try opened.importArticles(from: reader, progress: reporter.handler)
            reporter.finish()
            if output.json { return try printJSON(ImportJSON(file: file, summary: summary)) }
            var line = "imported \(Format.count(summary.articles, "article")): \(summary.inserted) new, "
                + "\(summary.updated) updated, \(summary.unchanged) unchanged"
            if summary.keptNewer > 0 {
                line += ", \(summary.keptNewer) older than the version held (kept the newer version)"
            }
            say(line)
            if !summary.unknownFields.isEmpty {
                let fields = summary.unknownFields.map { field in
                    "\(field.name) (\(Format.count(field.articles, "article")), first at \(field.firstPlace))"
                }
                say("left out \(Format.count(summary.unknownFields.count, "field")) the article model does not hold: "
                    + fields.joined(separator: ", ") + "; --strict refuses such files")
            }
        }
    }
}

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List the feed, newest first, a page at a time.",
        discussion: """
            On a terminal a page holds 50 articles and the line 'more: --after CURSOR' on stderr says how to see the \
            next one; elsewhere (a pipe, a file) every article is printed unless --limit is given. --json items carry \
            no body unless --with-body; the document's 'next' is the cursor of the next page (null at the end).
            """)
    @OptionGroup var replica: ReplicaOptionsGroup
    @OptionGroup var output: OutputOptions
    @OptionGroup var paging: PagingOptions
    @Flag(help: "Only unread articles.") var unread = false
    @Flag(help: "Only saved articles.") var saved = false
    @Option(help: "Only articles from this source (any letter case).") var source: String?
    @Option(help: "Only articles with this topic (any letter case).") var topic: String?
    @Flag(name: .customLong("with-body"), help: "Include each article's body in --json output.") var withBody = false

    /// Items fetched per query while printing.
    static let batch = 500

    func validate() throws {
        if withBody && !output.json {
            throw ValidationError("--with-body adds bodies to --json output; the text list never shows bodies")
        }
        if let after = paging.after, FeedCursor(after) == nil {
            throw ValidationError("--after '\(after)' is not a cursor printed by `readersync list` (they start with f1.)")
        }
    }

    func run() throws {
        try ReaderSync_CLI.run {
            let opened = try replica.open()
            let query = FeedQuery(unreadOnly: unread, savedOnly: saved, source: source, topic: topic)
            let limit = paging.effectiveLimit
            var cursor = paging.after.flatMap(FeedCursor.init)
            var remaining = limit ?? Int.max
            var next: FeedCursor?
            var shown = 0
            var json = output.json ? JSONDocumentStream() : nil
            var text = BufferedOutput()
            if json != nil {
                try json?.member("format", JSONFormat.list)
                json?.beginArray("items")
            }
            while remaining > 0 {
                let page = try opened.feedPage(query, after: cursor, limit: min(remaining, Self.batch),
                                               includeBodies: output.json && withBody)
                for item in page.items {
                    if json != nil {
                        try json?.item(FeedItemJSON(item: item, withBody: withBody))
                    } else {
                        text.line(Self.row(item))
                    }
                }
                shown += page.items.count
                remaining -= page.items.count
                cursor = page.next
                next = page.next
                if page.next == nil { break }
            }
            if json != nil {
                json?.endArray()
                if let next { try json?.member("next", next.description) } else { json?.nullMember("next") }
                try json?.member("withBody", withBody)
                json?.end()
                return
            }
            if shown == 0 { text.line(paging.after == nil ? "(no articles)" : "(no more articles)") }
            text.flush()
            if let next, let limit {
                note("more: --after \(next) (stopped at the limit of \(Format.count(limit, "article")))")
            }
        }
    }

    /// `unread saved  75%  2025-07-03  id  Source: Title  [2 comments]`.
    static func row(_ item: FeedItem) -> String {
        let state = item.readState
        let flags = (state.isRead ? "read  " : "unread") + (state.isSaved ? " saved" : "      ")
        let progress = state.progress > 0 ? String(format: " %3.0f%%", state.progress * 100) : "     "
        let date = (item.article.publishedAt ?? item.article.updatedAt).map(Format.day) ?? "(no date) "
        let comments = item.commentCount == 0 ? "" : "  [\(Format.count(item.commentCount, "comment"))]"
        return "\(flags)\(progress)  \(date)  \(item.article.id)  \(item.article.source): \(item.article.title)\(comments)"
    }
}

struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show an article and its comments as a thread.")
    @OptionGroup var replica: ReplicaOptionsGroup
    @OptionGroup var output: OutputOptions
    @Argument(help: "The article id.") var id: String

    func run() throws {
        try ReaderSync_CLI.run {
            let opened = try replica.open()
            let detail = try opened.article(id)
            // The storage budget evicts least recently opened bodies first. Best effort: a replica another
            // process is writing to still shows the article.
            if !opened.isReadOnly { try? opened.recordOpened(id) }
            let visible = Self.count(detail.comments, deleted: false)
            if output.json { return try printJSON(ShowJSON(detail: detail, commentCount: visible)) }
            let a = detail.article
            say(a.title)
            var byline = a.source
            if let by = a.byline { byline += " · by \(by)" }
            if let published = a.publishedAt { byline += " · published \(Self.minute(published))" }
            if let updated = a.updatedAt, updated != a.publishedAt { byline += " · updated \(Self.minute(updated))" }
            say(byline)
            let s = detail.readState
            say("[\(s.isRead ? "read" : "unread")\(s.isSaved ? ", saved" : "")\(s.progress > 0 ? String(format: ", %.0f%% read", s.progress * 100) : "")]")
            say("")
            if detail.bodyState == .held {
                say(a.body)
            } else {
                for line in Self.bodyNotHeld(detail.bodyState, replica: replica.path) { say(line) }
            }
            if !a.related.isEmpty { say(""); say("Related: \(a.related.joined(separator: ", "))") }
            say("")
            let deleted = Self.count(detail.comments, deleted: true)
            if detail.comments.isEmpty {
                say("Comments: none yet")
            } else if deleted == 0 {
                say("Comments (\(visible)):")
            } else {
                say("Comments (\(visible), and \(deleted) deleted):")
            }
            printThread(detail.comments, depth: 1)
        }
    }

    /// What `show` prints instead of a body this replica does not hold, and how to get it back.
    static func bodyNotHeld(_ state: BodyState, replica path: String) -> [String] {
        let why = state == .evicted
            ? "[body evicted: this replica dropped it to stay within its storage budget]"
            : "[body not received: the replica it came from had evicted it]"
        return [why,
                "To get it back: `readersync sync --db \(path) OTHER.db` with a replica file that holds it, "
                + "or `readersync fetch-bodies` from the server."]
    }

    /// `2025-07-03 12:00 UTC`.
    private static func minute(_ date: Date) -> String {
        let iso = Format.iso(date)
        return "\(iso.prefix(10)) \(iso.dropFirst(11).prefix(5)) UTC"
    }

    /// Comments in the threads that are (or are not) deleted.
    private static func count(_ threads: [CommentThread], deleted: Bool) -> Int {
        threads.reduce(0) { $0 + ($1.comment.isDeleted == deleted ? 1 : 0) + count($1.replies, deleted: deleted) }
    }

    private func printThread(_ threads: [CommentThread], depth: Int) {
        for thread in threads {
            let c = thread.comment
            let indent = String(repeating: "  ", count: depth)
            if c.isDeleted {
                say("\(indent)- [deleted] (\(c.id))")
            } else {
                say("\(indent)- \(c.author)\(c.editedAt == nil ? "" : " (edited)"): \(c.body)  (\(c.id))")
            }
            printThread(thread.replies, depth: depth + 1)
        }
    }
}

struct ReadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "read", abstract: "Mark an article read.")
    @OptionGroup var replica: ReplicaOptionsGroup
    @Argument(help: "The article id.") var id: String
    func run() throws { try ReaderSync_CLI.run { try replica.open().markRead(id); say("marked \(id) read") } }
}

struct UnreadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unread", abstract: "Mark an article unread (resets its progress).")
    @OptionGroup var replica: ReplicaOptionsGroup
    @Argument(help: "The article id.") var id: String
    func run() throws { try ReaderSync_CLI.run { try replica.open().markUnread(id); say("marked \(id) unread") } }
}

struct ProgressCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "progress", abstract: "Record reading progress, 0 to 1.")
    @OptionGroup var replica: ReplicaOptionsGroup
    @Argument(help: "The article id.") var id: String
    // Taken verbatim so that a negative number reaches the range check instead of reading as an option.
    @Argument(parsing: .allUnrecognized, help: ArgumentHelp("How far, from 0 to 1.", valueName: "fraction")) var fractionWords: [String] = []

    /// The fraction as typed; a `--` separator, which older usage needed before negative numbers, is allowed.
    private var words: [String] { fractionWords.filter { $0 != "--" } }

    func validate() throws {
        guard words.count == 1 else {
            throw ValidationError("give exactly one progress fraction between 0 and 1")
        }
    }

    func run() throws {
        try ReaderSync_CLI.run {
            let fraction = words.first ?? ""
            guard let value = Double(fraction) else {
                throw ReaderSyncError.invalidInput("progress must be a number between 0 and 1, got '\(fraction)'")
            }
            try replica.open().setProgress(id, value)
            say("progress of \(id): \(fraction)")
        }
    }
}

struct SaveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "save", abstract: "Save an article for later.")
    @OptionGroup var replica: ReplicaOptionsGroup
    @Argument(help: "The article id.") var id: String
    func run() throws { try ReaderSync_CLI.run { try replica.open().save(id); say("saved \(id)") } }
}

struct UnsaveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unsave", abstract: "Remove an article from the saved list.")
    @OptionGroup var replica: ReplicaOptionsGroup
    @Argument(help: "The article id.") var id: String
    func run() throws { try ReaderSync_CLI.run { try replica.open().unsave(id); say("unsaved \(id)") } }
}

struct CommentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "comment", abstract: "Add, edit or delete comments.",
        subcommands: [Add.self, Edit.self, Delete.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Comment on an article, or reply to a comment.")
        @OptionGroup var replica: ReplicaOptionsGroup
        @Argument(help: "The article id.") var id: String
        @Argument(help: "The comment text.") var text: String
        @Option(name: .customLong("reply-to"), help: "The comment to reply to.") var replyTo: String?
        func run() throws {
            try ReaderSync_CLI.run {
                let comment = try replica.open().addComment(to: id, body: text, replyTo: replyTo)
                say("added comment \(comment.id)")
            }
        }
    }

    struct Edit: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Replace the text of your comment.")
        @OptionGroup var replica: ReplicaOptionsGroup
        @Argument(help: "The comment id.") var commentID: String
        @Argument(help: "The new text.") var text: String
        func run() throws {
            try ReaderSync_CLI.run { try replica.open().editComment(commentID, body: text); say("edited comment \(commentID)") }
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete your comment.")
        @OptionGroup var replica: ReplicaOptionsGroup
        @Argument(help: "The comment id.") var commentID: String
        func run() throws {
            try ReaderSync_CLI.run { try replica.open().deleteComment(commentID); say("deleted comment \(commentID)") }
        }
    }
}

struct LogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "log", abstract: "Print the change log, oldest first, a page at a time.",
        discussion: """
            The cursor is the first column (HLC-ORIGIN-SEQ, the entry's place in write order). On a terminal a page holds 50 entries and \
            'more: --after N' on stderr says where the next page starts; elsewhere every entry is printed unless \
            --limit is given.
            """)
    @OptionGroup var replica: ReplicaOptionsGroup
    @OptionGroup var output: OutputOptions
    @OptionGroup var paging: PagingOptions

    /// Entries fetched per query while printing.
    static let batch = 1000

    func validate() throws {
        if let after = paging.after {
            let parts = after.split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count == 3, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) && UInt64($0) != nil }) else {
                throw ValidationError("--after '\(after)' is not a change-log cursor (the first column of `readersync log`, HLC-ORIGIN-SEQ)")
            }
        }
    }

    func run() throws {
        try ReaderSync_CLI.run {
            let opened = try replica.open()
            let limit = paging.effectiveLimit
            let start = paging.after
            var last = start
            var remaining = limit ?? Int.max
            var shown = 0
            var json = output.json ? JSONDocumentStream() : nil
            var text = BufferedOutput()
            json?.beginArray("entries")
            var exhausted = false
            while remaining > 0 {
                let want = min(remaining, Self.batch)
                let entries = try opened.changeLog(after: last, limit: want)
                for entry in entries {
                    let isLocal = entry.change.origin == opened.replicaID
                    if json != nil {
                        try json?.item(LogEntryJSON(entry: entry, isLocal: isLocal))
                    } else {
                        text.line(Self.row(entry, isLocal: isLocal))
                    }
                }
                shown += entries.count
                remaining -= entries.count
                if let final = entries.last { last = final.cursor }
                if entries.count < want {
                    exhausted = true
                    break
                }
            }
            // Stopped by the limit: is there more?
            let more = try !exhausted && !opened.changeLog(after: last, limit: 1).isEmpty
            if json != nil {
                json?.endArray()
                try json?.member("format", JSONFormat.log)
                if more, let last { try json?.member("next", last) } else { json?.nullMember("next") }
                json?.end()
                return
            }
            if shown == 0 { text.line(start == nil ? "(change log is empty)" : "(no entries after \(start ?? ""))") }
            text.flush()
            if more, let limit {
                note("more: --after \(last ?? "") (stopped at the limit of \(Format.count(limit, "entry", "entries")))")
            }
        }
    }

    /// `local sequence, hlc, origin#seq, entity key .field = value`, tab-separated.
    static func row(_ entry: ChangeLogEntry, isLocal: Bool) -> String {
        let c = entry.change
        let origin = isLocal ? "local" : "\(entry.originAccount)@\(c.origin.description.prefix(8))"
        return "\(entry.cursor)\t\(c.hlc)\t\(origin)#\(c.seq)\t\(c.entity) \(c.key) .\(c.field) = \(c.value)"
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show the replica's id, account, counts, clock and log size.")
    @OptionGroup var replica: ReplicaOptionsGroup
    @OptionGroup var output: OutputOptions

    func run() throws {
        try ReaderSync_CLI.run {
            let opened = try replica.open()
            let s = try opened.status()
            let storage = try StorageFigures.measure(opened, status: s)
            if output.json { return try printJSON(StatusJSON(status: s, storage: storage)) }
            say("replica:   \(s.replicaID)")
            say("account:   \(s.account) (\(s.role.rawValue))")
            say("file:      \(s.path ?? "(memory)") (\(Format.bytes(s.databaseBytes)), schema v\(s.schemaVersion))")
            say("articles:  \(s.articles)")
            say("comments:  \(s.comments)")
            say("read states: \(s.readStates)")
            say("clock:     \(s.clock)")
            say("own changes: \(s.lastSequence)")
            say("change log: \(Format.count(s.logEntries, "entry", "entries")) retained (~\(Format.bytes(s.logBytes)))")
            say("known replicas: \(s.knownReplicas)")
            if let budget = storage.budget {
                say("storage budget: \(StorageBudget.format(bytes: budget.bytes)) (\(StorageBudget.format(bytes: storage.bytesInUse)) in use, "
                    + "\(storage.isOverBudget ? "over budget" : "within budget"))")
            } else {
                say("storage budget: none")
            }
            say("bodies not held: \(storage.bodiesNotHeld)")
            say("search index: \(Format.bytes(storage.searchIndexBytes))")
        }
    }
}

struct DumpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump", abstract: "Print the whole user-visible state as canonical JSON (byte-comparable across replicas).")
    @OptionGroup var replica: ReplicaOptionsGroup
    @Option(help: "Only this account's read states (for a server's store).") var account: String?

    func run() throws {
        try ReaderSync_CLI.run {
            // Streamed: memory stays flat whatever the replica holds.
            try replica.open().writeCanonicalDump(account: account) { Output.standardOutput.write($0) }
        }
    }
}

struct SchemaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema", abstract: "Print the store schema SQL this build creates (Schemas/store-schema.sql).",
        shouldDisplay: false)

    func run() throws {
        try ReaderSync_CLI.run {
            say(try Replica.inMemory(account: "schema").schemaSQL())
        }
    }
}

struct CompletionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "completion", abstract: "Print a shell completion script (bash, zsh or fish).",
        discussion: """
            bash:  readersync completion bash > ~/.local/share/bash-completion/completions/readersync
            zsh:   readersync completion zsh > "${fpath[1]}/_readersync"
            fish:  readersync completion fish > ~/.config/fish/completions/readersync.fish
            """)

    enum Shell: String, ExpressibleByArgument, CaseIterable {
        case bash, zsh, fish
    }

    @Argument(help: "The shell: bash, zsh or fish.") var shell: Shell

    func run() throws {
        let kind: CompletionShell
        switch shell {
        case .bash: kind = .bash
        case .zsh: kind = .zsh
        case .fish: kind = .fish
        }
        Output.standardOutput.write(ReaderSyncCommand.completionScript(for: kind))
    }
}

/// Namespace so commands can call the module-level `run` despite their own `run()`.
enum ReaderSync_CLI {
    static func run(_ body: () throws -> Void) throws { try readersync.run(body) }
    static func runAsync(_ body: () async throws -> Void) async throws { try await readersync.runAsync(body) }
}
