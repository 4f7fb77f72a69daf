import ArgumentParser
import Foundation
import ReaderSync

/// `readersync`: a reader replica on the command line.
@main
struct ReaderSyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "readersync",
        abstract: "An offline-first news reader replica: read, save, comment, and sync with other replicas.",
        discussion: """
            Every command works on one replica file, chosen by --db (default: $READERSYNC_DB, else ./readersync.db).
            Errors print one line on stderr and exit non-zero: 1 for a failed operation, 64 for bad usage.
            --json output is documented in Schemas/cli-json.md.
            """,
        version: ReaderSyncVersion.current,
        subcommands: [
            InitCommand.self, ImportCommand.self, ListCommand.self, ShowCommand.self, SearchCommand.self,
            ReadCommand.self, UnreadCommand.self, ProgressCommand.self, SaveCommand.self, UnsaveCommand.self,
            CommentCommand.self, LogCommand.self, StatusCommand.self, BudgetCommand.self, EvictCommand.self, DumpCommand.self,
            SyncCommand.self, FetchBodiesCommand.self, BundleCommand.self, KnowledgeCommand.self, CompletionCommand.self, SchemaCommand.self,
        ]
    )

    /// Parses and runs the command, as `AsyncParsableCommand`'s default does, after restoring SIGPIPE's default
    /// action so that `readersync list | head` ends quietly.
    static func main() async {
        Terminal.defaultSigpipe()
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

/// Options every command takes.
struct ReplicaOptionsGroup: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The replica file.", valueName: "path"))
    var db: String?

    /// The replica path: --db, else $READERSYNC_DB, else ./readersync.db.
    var path: String {
        if let db { return db }
        if let env = ProcessInfo.processInfo.environment["READERSYNC_DB"], !env.isEmpty { return env }
        return "readersync.db"
    }

    func open() throws -> Replica {
        do {
            return try Replica.open(at: path)
        } catch ReaderSyncError.notFound(let message) {
            throw ReaderSyncError.notFound(message + "; create one with `readersync init`")
        }
    }
}

/// The `--json` flag of commands that print data.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print JSON (shapes: Schemas/cli-json.md) instead of text.")
    var json = false
}

/// `--limit` and `--after` of the commands that page (`list`, `log`).
struct PagingOptions: ParsableArguments {
    /// The page size when stdout is a terminal and no --limit is given.
    static let terminalLimit = 50

    @Option(help: ArgumentHelp(
        "At most this many items (default: \(PagingOptions.terminalLimit) when stdout is a terminal, else all).",
        valueName: "n"))
    var limit: Int?

    @Option(help: ArgumentHelp("Start after this position: the cursor a previous page printed ('more: --after …').",
                               valueName: "cursor"))
    var after: String?

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1, got \(limit)") }
    }

    /// The page size: --limit, else 50 on a terminal, else nil (everything).
    var effectiveLimit: Int? {
        if let limit { return limit }
        return Terminal.isTerminal(.standardOutput) ? Self.terminalLimit : nil
    }
}

/// Runs a command body, turning ReaderSync errors into one line on stderr and exit code 1.
func run(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ReaderSyncError {
        throw fail(error.message)
    }
}

/// Async variant of ``run(_:)``.
func runAsync(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as ReaderSyncError {
        throw fail(error.message)
    }
}

/// Clears a progress line, prints `readersync: error: message` on stderr and returns the exit code to throw.
func fail(_ message: String) -> ExitCode {
    ProgressReporter.clearActive()
    Output.standardError.write("readersync: error: \(message.replacingOccurrences(of: "\n", with: " "))\n")
    return ExitCode.failure
}

/// Writes `text` and a newline to stdout.
func say(_ text: String) {
    Output.standardOutput.write(text + "\n")
}

/// Writes a note (not data) to stderr: hints such as where the next page starts.
func note(_ text: String) {
    ProgressReporter.clearActive()
    Output.standardError.write(text + "\n")
}

/// Prints an Encodable value as pretty JSON with sorted keys.
func printJSON(_ value: some Encodable) throws {
    let data = try JSONOutput.encode(value)
    Output.standardOutput.write(data)
    Output.standardOutput.write("\n")
}
