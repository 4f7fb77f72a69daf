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
            """,
        subcommands: [
            InitCommand.self, ImportCommand.self, ListCommand.self, ShowCommand.self,
            ReadCommand.self, UnreadCommand.self, ProgressCommand.self, SaveCommand.self, UnsaveCommand.self,
            CommentCommand.self, LogCommand.self, StatusCommand.self, DumpCommand.self,
            SyncCommand.self, BundleCommand.self, KnowledgeCommand.self, SchemaCommand.self,
        ]
    )
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
        try Replica.open(at: path)
    }
}

/// The `--json` flag of commands that print data.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print JSON instead of text.")
    var json = false
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

/// Prints `readersync: error: message` on stderr and returns the exit code to throw.
func fail(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("readersync: error: \(message)\n".utf8))
    return ExitCode.failure
}

/// Writes `text` and a newline to stdout.
func say(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

/// Prints an Encodable value as pretty JSON with sorted keys.
func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    let data = try encoder.encode(value)
    FileHandle.standardOutput.write(data)
    FileHandle.standardOutput.write(Data("\n".utf8))
}

/// Formats a byte count as "1.2 KiB".
func formatBytes(_ bytes: Int) -> String {
    if bytes < 1024 { return "\(bytes) B" }
    if bytes < 1024 * 1024 { return String(format: "%.1f KiB", Double(bytes) / 1024) }
    return String(format: "%.1f MiB", Double(bytes) / 1024 / 1024)
}
