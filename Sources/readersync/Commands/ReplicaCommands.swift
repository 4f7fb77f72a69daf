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
        abstract: "Import articles: the page shape ({\"articles\": [...]}), a JSON array, or JSON Lines. All or nothing.")
    @OptionGroup var replica: ReplicaOptionsGroup
    @Argument(help: "The file to import.")
    var file: String

    func run() throws {
        try ReaderSync_CLI.run {
            let articles = try ArticleImport.parse(contentsOf: URL(fileURLWithPath: file))
            let summary = try replica.open().upsertArticles(articles)
            say("imported \(articles.count) articles: \(summary.inserted) new, \(summary.updated) updated, \(summary.unchanged) unchanged")
        }
    }
}

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the feed, newest first.")
    @OptionGroup var replica: ReplicaOptionsGroup
    @OptionGroup var output: OutputOptions
    @Flag(help: "Only unread articles.") var unread = false
    @Flag(help: "Only saved articles.") var saved = false
    @Option(help: "Only articles from this source.") var source: String?
    @Option(help: "Only articles with this topic.") var topic: String?

    func run() throws {
        try ReaderSync_CLI.run {
            let items = try replica.open().feed(FeedQuery(unreadOnly: unread, savedOnly: saved, source: source, topic: topic))
            if output.json { return try printJSON(items.map(FeedItemJSON.init)) }
            if items.isEmpty { say("(no articles)"); return }
            for item in items {
                let state = item.readState
                let flags = (state.isRead ? "read  " : "unread") + (state.isSaved ? " saved" : "      ")
                let progress = state.progress > 0 ? String(format: " %3.0f%%", state.progress * 100) : "     "
                let comments = item.commentCount == 0 ? "" : item.commentCount == 1 ? "  [1 comment]" : "  [\(item.commentCount) comments]"
                say("\(flags)\(progress)  \(item.article.id)  \(item.article.source): \(item.article.title)\(comments)")
            }
        }
    }
}

struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show an article and its comments as a thread.")
    @OptionGroup var replica: ReplicaOptionsGroup
    @OptionGroup var output: OutputOptions
    @Argument(help: "The article id.") var id: String

    func run() throws {
        try ReaderSync_CLI.run {
            let detail = try replica.open().article(id)
            if output.json { return try printJSON(ArticleDetailJSON(detail)) }
            let a = detail.article
            say(a.title)
            say("\(a.source)\(a.byline.map { " · by \($0)" } ?? "")\(a.publishedAt.map { " · \($0)" } ?? "")")
            let s = detail.readState
            say("[\(s.isRead ? "read" : "unread")\(s.isSaved ? ", saved" : "")\(s.progress > 0 ? String(format: ", %.0f%% read", s.progress * 100) : "")]")
            say("")
            say(a.body)
            if !a.related.isEmpty { say(""); say("Related: \(a.related.joined(separator: ", "))") }
            say("")
            let count = countComments(detail.comments)
            say(count == 0 ? "Comments: none yet" : "Comments (\(count)):")
            printThread(detail.comments, depth: 1)
        }
    }

    private func countComments(_ threads: [CommentThread]) -> Int {
        threads.reduce(0) { $0 + ($1.comment.isDeleted ? 0 : 1) + countComments($1.replies) }
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
    static let configuration = CommandConfiguration(commandName: "log", abstract: "Print the change log, oldest first.")
    @OptionGroup var replica: ReplicaOptionsGroup
    @OptionGroup var output: OutputOptions
    @Option(help: "Only entries after this cursor (printed first on each line).") var after: String?
    @Option(help: "At most this many entries.") var limit: Int = 1000

    func run() throws {
        try ReaderSync_CLI.run {
            guard limit > 0 else { throw ReaderSyncError.invalidInput("--limit must be positive, got \(limit)") }
            let opened = try replica.open()
            let entries = try opened.changeLog(after: after, limit: limit)
            if output.json { return try printJSON(entries) }
            if entries.isEmpty { say("(change log is empty)"); return }
            for entry in entries {
                let c = entry.change
                let origin = c.origin == opened.replicaID ? "local" : "\(entry.originAccount)@\(c.origin.description.prefix(8))"
                say("\(entry.cursor)\t\(c.hlc)\t\(origin)#\(c.seq)\t\(c.entity) \(c.key) .\(c.field) = \(c.value)")
            }
        }
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show the replica's id, account, counts, clock and log size.")
    @OptionGroup var replica: ReplicaOptionsGroup
    @OptionGroup var output: OutputOptions

    func run() throws {
        try ReaderSync_CLI.run {
            let s = try replica.open().status()
            if output.json { return try printJSON(s) }
            say("replica:   \(s.replicaID)")
            say("account:   \(s.account) (\(s.role.rawValue))")
            say("file:      \(s.path ?? "(memory)") (\(formatBytes(s.databaseBytes)), schema v\(s.schemaVersion))")
            say("articles:  \(s.articles)")
            say("comments:  \(s.comments)")
            say("read states: \(s.readStates)")
            say("clock:     \(s.clock)")
            say("own changes: \(s.lastSequence)")
            say("change log: \(s.logEntries) entries retained (~\(formatBytes(s.logBytes)))")
            say("known replicas: \(s.knownReplicas)")
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
            FileHandle.standardOutput.write(try replica.open().canonicalDump(account: account))
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

/// Namespace so commands can call the module-level `run` despite their own `run()`.
enum ReaderSync_CLI {
    static func run(_ body: () throws -> Void) throws { try readersync.run(body) }
    static func runAsync(_ body: () async throws -> Void) async throws { try await readersync.runAsync(body) }
}
