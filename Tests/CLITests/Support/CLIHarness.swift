import Foundation
import Testing

// MARK: - Locating the built binary and the fixture

/// Where the built `readersync` executable and the package's files are.
enum CLIPaths {
    /// The package root, derived from this file's path (`Tests/CLITests/Support/CLIHarness.swift`).
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // Support
        .deletingLastPathComponent()  // CLITests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // package root

    /// The built `readersync` binary: next to the test bundle (where SwiftPM puts every product of the
    /// build), else `.build/debug/readersync` under the package root. Nil if neither exists.
    static let binary: URL? = {
        var candidates: [URL] = [Bundle.main.bundleURL.appendingPathComponent("readersync")]
        if let first = CommandLine.arguments.first {
            candidates.append(URL(fileURLWithPath: first).deletingLastPathComponent().appendingPathComponent("readersync"))
        }
        candidates.append(packageRoot.appendingPathComponent(".build/debug/readersync"))
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }()

    /// The captured aggregator page (four articles), as copied into the tests so it is always there.
    static let fixture: URL = packageRoot.appendingPathComponent("Tests/ReaderSyncTests/Fixtures/news-page.json")

    /// Whether the `sqlite3` command-line shell is installed, and where.
    static let sqlite3: String? = {
        let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        return dirs.map { "\($0)/sqlite3" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()
}

/// The ids of the fixture's four articles (kept verbatim by `import`).
enum FixtureIDs {
    static let main = "ap-putin-trump-call-iran-ukraine"
    static let stocks = "u-s-stocks-extend-gains-to-conclude-first-half-of-2025"
    static let gaza = "trump-netanyahu-to-hold-talks-on-ending-gaza-war"
    static let hamas = "trump-expects-final-decision-on-hamas-peace-proposal-in-24-h"
    static let all = [main, stocks, gaza, hamas]
}

// MARK: - Running the binary

/// What one run of the binary produced.
struct CLIResult: CustomStringConvertible {
    var arguments: [String]
    var status: Int32
    var stdout: String
    var stderr: String
    var stdoutData: Data

    /// The non-empty lines of stderr.
    var stderrLines: [String] { stderr.split(separator: "\n", omittingEmptySubsequences: true).map(String.init) }
    /// The lines of stdout.
    var lines: [String] { stdout.split(separator: "\n", omittingEmptySubsequences: true).map(String.init) }

    var description: String {
        "readersync \(arguments.joined(separator: " ")) → exit \(status)\n--- stdout:\n\(stdout)--- stderr:\n\(stderr)"
    }
}

/// A fresh temporary directory for one test, in which the binary runs; removed when the test ends.
///
/// Swift Testing creates a new suite instance per test, so a suite that holds one of these gets a new
/// directory for every test.
final class Sandbox {
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("readersync-cli-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    deinit {
        // Make read-only directories a test made removable again.
        if let items = FileManager.default.enumerator(atPath: directory.path) {
            for case let item as String in items {
                chmod(directory.appendingPathComponent(item).path, 0o755)
            }
        }
        try? FileManager.default.removeItem(at: directory)
    }

    /// The absolute path of `name` inside the sandbox.
    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// Writes text to a file in the sandbox and returns its path.
    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path(name)))
        return path(name)
    }

    /// Writes bytes to a file in the sandbox and returns its path.
    @discardableResult
    func write(_ name: String, bytes: Data) throws -> String {
        try bytes.write(to: URL(fileURLWithPath: path(name)))
        return path(name)
    }

    /// The bytes of a file in the sandbox.
    func bytes(_ name: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path(name))) }

    /// Whether a file exists in the sandbox.
    func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: path(name)) }

    /// Starts `readersync args` in the sandbox without waiting; `finish` waits and collects its output.
    func start(_ args: [String], environment extra: [String: String] = [:]) throws -> RunningCLI {
        let binary = try #require(CLIPaths.binary, """
            the readersync binary was not found next to the test bundle (\(Bundle.main.bundleURL.path)) \
            nor at .build/debug/readersync; build it with `swift build --product readersync`
            """)
        let id = UUID().uuidString
        let outURL = directory.appendingPathComponent(".out-\(id)")
        let errURL = directory.appendingPathComponent(".err-\(id)")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let process = Process()
        process.executableURL = binary
        process.arguments = args
        process.currentDirectoryURL = directory
        // A clean environment: no READERSYNC_DB / READERSYNC_TOKEN leaking in from the developer's shell.
        var environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
                           "HOME": directory.path, "USER": "tester", "LANG": "C.UTF-8", "TMPDIR": directory.path]
        environment.merge(extra) { $1 }
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        // Files, not pipes: a large output can never block the child.
        let out = try FileHandle(forWritingTo: outURL)
        let err = try FileHandle(forWritingTo: errURL)
        process.standardOutput = out
        process.standardError = err
        try process.run()
        return RunningCLI(process: process, arguments: args, out: out, err: err, outURL: outURL, errURL: errURL)
    }

    /// Runs `readersync args` in the sandbox and waits for it.
    @discardableResult
    func run(_ args: String..., environment: [String: String] = [:]) throws -> CLIResult {
        try start(args, environment: environment).finish()
    }

    /// Runs `readersync args` and records a test issue unless it exits 0 with nothing on stderr.
    @discardableResult
    func ok(_ args: String..., environment: [String: String] = [:],
            sourceLocation: SourceLocation = #_sourceLocation) throws -> CLIResult {
        let result = try start(args, environment: environment).finish()
        #expect(result.status == 0, "\(result)", sourceLocation: sourceLocation)
        #expect(result.stderr.isEmpty, "\(result)", sourceLocation: sourceLocation)
        return result
    }

    /// `dump` of a replica as bytes (the canonical JSON).
    func dump(_ db: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> Data {
        let result = try start(["dump", "--db", db]).finish()
        #expect(result.status == 0, "\(result)", sourceLocation: sourceLocation)
        return result.stdoutData
    }

    /// `dump` of a replica, parsed.
    func dumpJSON(_ db: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        let data = try dump(db, sourceLocation: sourceLocation)
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any], sourceLocation: sourceLocation)
    }

    /// `status --json` of a replica, parsed.
    func status(_ db: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        let result = try start(["status", "--db", db, "--json"]).finish()
        #expect(result.status == 0, "\(result)", sourceLocation: sourceLocation)
        return try #require(try JSONSerialization.jsonObject(with: result.stdoutData) as? [String: Any],
                            sourceLocation: sourceLocation)
    }

    /// `status --json`'s `lastSequence` (a decimal string) as a number.
    func lastSequence(_ db: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> Int? {
        (try status(db, sourceLocation: sourceLocation)["lastSequence"] as? String).flatMap { Int($0) }
    }

    /// Creates a replica for `account` and imports the fixture into it.
    func replicaWithFixture(_ db: String, account: String = "alice") throws {
        try ok("init", "--db", db, "--account", account)
        try ok("import", "--db", db, CLIPaths.fixture.path)
    }

    /// Adds a comment and returns its id (from "added comment ID").
    func addComment(_ db: String, _ article: String, _ text: String, replyTo: String? = nil,
                    sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        var args = ["comment", "add", "--db", db, article, text]
        if let replyTo { args += ["--reply-to", replyTo] }
        let result = try start(args).finish()
        #expect(result.status == 0, "\(result)", sourceLocation: sourceLocation)
        let line = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(line.hasPrefix("added comment "), "\(result)", sourceLocation: sourceLocation)
        return String(line.dropFirst("added comment ".count))
    }
}

/// A started run of the binary.
struct RunningCLI {
    let process: Process
    let arguments: [String]
    let out: FileHandle
    let err: FileHandle
    let outURL: URL
    let errURL: URL

    /// Waits for the process and collects what it printed.
    func finish() throws -> CLIResult {
        process.waitUntilExit()
        try? out.close()
        try? err.close()
        let stdout = try Data(contentsOf: outURL)
        let stderr = try Data(contentsOf: errURL)
        try? FileManager.default.removeItem(at: outURL)
        try? FileManager.default.removeItem(at: errURL)
        return CLIResult(arguments: arguments, status: process.terminationStatus,
                         stdout: String(decoding: stdout, as: UTF8.self),
                         stderr: String(decoding: stderr, as: UTF8.self), stdoutData: stdout)
    }
}

// MARK: - Expectations

/// Checks the error contract: exit code 1, nothing on stdout, and exactly one line on stderr that starts with
/// `readersync: error:` and contains every one of `mentions`.
func expectError(_ result: CLIResult, mentions: [String] = [], status: Int32 = 1,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(result.status == status, "expected exit \(status): \(result)", sourceLocation: sourceLocation)
    #expect(result.stderrLines.count == 1, "expected exactly one line on stderr: \(result)", sourceLocation: sourceLocation)
    #expect(result.stderr.hasPrefix("readersync: error: "), "\(result)", sourceLocation: sourceLocation)
    #expect(result.stderr.hasSuffix("\n"), "\(result)", sourceLocation: sourceLocation)
    #expect(result.stdout.isEmpty, "expected nothing on stdout: \(result)", sourceLocation: sourceLocation)
    for mention in mentions {
        #expect(result.stderr.contains(mention), "stderr should mention '\(mention)': \(result)",
                sourceLocation: sourceLocation)
    }
}

/// Parses JSON output, failing the test if it is not JSON.
func parseJSON(_ result: CLIResult, sourceLocation: SourceLocation = #_sourceLocation) throws -> Any {
    #expect(result.status == 0, "\(result)", sourceLocation: sourceLocation)
    return try JSONSerialization.jsonObject(with: result.stdoutData)
}

/// The articles, comments and read states of a parsed dump.
struct DumpParts {
    var articles: [[String: Any]]
    var comments: [[String: Any]]
    var readStates: [[String: Any]]

    init(_ dump: [String: Any]) {
        articles = dump["articles"] as? [[String: Any]] ?? []
        comments = dump["comments"] as? [[String: Any]] ?? []
        readStates = dump["readStates"] as? [[String: Any]] ?? []
    }
}

/// The canonical text of a JSON value (sorted keys), for comparing parts of two dumps.
func canonical(_ value: Any) throws -> String {
    String(decoding: try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]), as: UTF8.self)
}
