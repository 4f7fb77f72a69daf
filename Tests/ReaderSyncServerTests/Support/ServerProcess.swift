import Foundation
import ReaderSync
import Testing

/// A `readersync-server serve` process on 127.0.0.1 and a free port, stopped (SIGTERM, then waited for) by
/// ``stop()``.
final class ServerProcess: @unchecked Sendable {
    let process: Process
    /// The base URL it printed (`http://127.0.0.1:PORT` or `https://…`).
    let url: String
    let port: Int

    /// Starts `serve --db db --port 0 --log-level warning` plus `arguments`, and waits for its "listening on" line.
    init(db: String, arguments: [String] = []) async throws {
        process = Process()
        process.executableURL = try ExecutableTests.binary()
        process.arguments = ["serve", "--db", db, "--port", "0", "--log-level", "warning"] + arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let line = await ExecutableTests.readLine(out.fileHandleForReading)
        guard let line, let range = line.range(of: "listening on "),
              let colon = line.lastIndex(of: ":"), let port = Int(line[line.index(after: colon)...]) else {
            process.terminate()
            await ExecutableTests.waitForExit(process)
            throw ReaderSyncError.transport("readersync-server did not start: first line \(line ?? "none")")
        }
        url = String(line[range.upperBound...])
        self.port = port
    }

    var pid: Int32 { process.processIdentifier }

    /// SIGTERM, then waits for the exit; returns the exit status.
    @discardableResult
    func stop() async -> Int32 {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        await ExecutableTests.waitForExit(process)
        return process.terminationStatus
    }
}

/// Starts a server process, runs `body` with it, and stops it whatever happens.
func withServerProcess<T>(db: String, arguments: [String] = [], _ body: (ServerProcess) async throws -> T) async throws -> T {
    let server = try await ServerProcess(db: db, arguments: arguments)
    do {
        let result = try await body(server)
        await server.stop()
        return result
    } catch {
        await server.stop()
        throw error
    }
}

/// Runs the built `readersync` client (beside the server binary) to completion.
enum ClientProcess {
    static func binary() throws -> URL {
        let url = try ExecutableTests.binary().deletingLastPathComponent().appendingPathComponent("readersync")
        guard FileManager.default.isExecutableFile(atPath: url.path) else {
            throw ReaderSyncError.notFound("readersync is not built next to readersync-server (\(url.path))")
        }
        return url
    }

    /// Runs `executable` (default: the `readersync` binary) with `arguments` and extra `environment`.
    static func run(_ arguments: [String], executable: URL? = nil,
                    environment: [String: String] = [:]) async throws -> ExecutableTests.Output {
        let process = Process()
        process.executableURL = try executable ?? binary()
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        async let stdout = ExecutableTests.readAll(out.fileHandleForReading)
        async let stderr = ExecutableTests.readAll(err.fileHandleForReading)
        let (o, e) = await (stdout, stderr)
        await ExecutableTests.waitForExit(process)
        return ExecutableTests.Output(status: process.terminationStatus, stdout: o, stderr: e)
    }
}
