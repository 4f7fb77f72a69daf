import ArgumentParser
import Foundation
import Hummingbird
import Logging
import ReaderSync
import ReaderSyncServer

/// `readersync-server`: the reference sync server and its administration.
@main
struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "readersync-server",
        abstract: "The ReaderSync reference sync server: serve HTTP sync, manage accounts, publish articles.",
        discussion: """
            Every command works on one server store, chosen by --db (default: $READERSYNC_SERVER_DB). Only serve, \
            account add and import create a missing store file; the other commands refuse it.
            Errors print one line on stderr and exit non-zero: 1 for a failed operation, 64 for bad usage.
            """,
        version: ReaderSyncVersion.current,
        subcommands: [ServeCommand.self, AccountCommand.self, ImportCommand.self]
    )
}

/// The store every command works on.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "The server store file (serve, account add and import create it if missing).", valueName: "path"))
    var db: String?

    /// --db, else $READERSYNC_SERVER_DB.
    var path: String {
        if let db { return db }
        return ProcessInfo.processInfo.environment["READERSYNC_SERVER_DB"] ?? ""
    }

    func validate() throws {
        guard !path.isEmpty else { throw ValidationError("give the store with --db PATH (or set READERSYNC_SERVER_DB)") }
    }

    /// Opens the store; a missing file is created only if `createIfMissing` (serve, account add, import), else
    /// refused with a message naming it.
    func open(createIfMissing: Bool) throws -> SQLiteServerStore {
        do {
            return try SQLiteServerStore(path: path, createIfMissing: createIfMissing)
        } catch let error as ServerStoreError where error.kind == .notFound {
            throw ServerStoreError(.notFound,
                                   "no server store at \(path) (the file does not exist); 'account add' or 'import' creates one")
        }
    }
}

/// Runs a command body, turning store and core errors into one line on stderr and exit code 1.
func reporting(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as ServerStoreError {
        throw fail(error.message)
    } catch let error as ReaderSyncError {
        throw fail(error.message)
    } catch let error as ServerSetupError {
        throw fail(error.message)
    }
}

/// Prints `readersync-server: error: message` on stderr and returns the exit code to throw.
func fail(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("readersync-server: error: \(message)\n".utf8))
    return ExitCode.failure
}

/// Writes `text` and a newline to stdout, unbuffered.
func say(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}
