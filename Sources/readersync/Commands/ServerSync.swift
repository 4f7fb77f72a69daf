import ArgumentParser
import Foundation
import ReaderSync

/// Syncs `replica` with a sync server over HTTP: pushes what the server lacks, then pulls pages of what the
/// replica lacks. Prints a summary on stdout (or JSON), progress on stderr as `reporter` decides, and every
/// change the server refused (they stay in this replica).
func syncWithServer(replica: Replica, url: String, token: String?, json: Bool, reporter: ProgressReporter) async throws {
    guard let token, !token.isEmpty else {
        throw ReaderSyncError.invalidInput("syncing with \(url) needs a token: pass --token or set READERSYNC_TOKEN")
    }
    let transport = try URLSessionTransport(url: url, token: token, retry: retryPolicy(),
                                            onRetry: reporter.isOn ? printRetry : nil)
    var onPage: (@Sendable (ServerSyncProgress) -> Void)?
    if reporter.isOn { onPage = { step in reporter.report(step) } }
    let report: ServerSyncReport
    do {
        report = try await replica.sync(using: transport, progress: onPage)
    } catch ReaderSyncError.server(401, let message) {
        // The server does not know the token (mistyped, or revoked): only its operator can issue a new one.
        throw ReaderSyncError.server(status: 401,
            "\(message); get a new token from the server's operator and pass it with --token or READERSYNC_TOKEN")
    }
    reporter.finish()
    if let change = report.identityChange {
        note("\(change.reason); this replica continues as \(change.current) (was \(change.previous)), keeping everything it held")
    }
    let pushed = report.pushed
    let pulled = report.pulled
    if json {
        return try printJSON(SyncJSON(
            peer: url, kind: "server",
            sent: .init(changes: pushed.changes, bytes: pushed.bytes, applied: pushed.applied, duplicates: pushed.duplicates),
            received: .init(changes: pulled.changes, bytes: pulled.bytes, applied: pulled.applied, duplicates: pulled.duplicates),
            readState: true,
            refused: report.refused.map {
                .init(origin: $0.origin.description, seq: String($0.seq), entity: $0.entity.description, key: $0.key,
                      field: $0.field, reason: $0.reason)
            }, eviction: report.eviction.map(EvictionJSON.init)))
    }
    say("sent \(Format.count(pushed.changes, "change")) (\(Format.bytes(pushed.bytes))) to \(url): \(pushed.applied) new, \(pushed.duplicates) already held")
    say("received \(Format.count(pulled.changes, "change")) (\(Format.bytes(pulled.bytes))) from \(url): \(pulled.applied) new")
    if let line = StorageText.afterSync(report.eviction, of: replica.path ?? "this replica") { say(line) }
    if !report.refused.isEmpty {
        say("the server refused \(Format.count(report.refused.count, "change")); \(report.refused.count == 1 ? "it stays" : "they stay") in this replica:")
        for refused in report.refused {
            say("  \(refused.entity) \(refused.key) (\(refused.field)): \(refused.reason)")
        }
    }
}
/// How long to wait for a server that asks to retry later: the default policy, with the longest wait taken from
/// `$READERSYNC_MAX_RETRY_WAIT` (seconds; 0 never waits) when it is set.
private func retryPolicy() -> RetryPolicy {
    var policy = RetryPolicy()
    if let value = ProcessInfo.processInfo.environment["READERSYNC_MAX_RETRY_WAIT"], let seconds = Double(value), seconds >= 0 {
        policy.maxDelay = seconds
        if seconds == 0 { policy.maxRetries = 0 }
    }
    return policy
}

/// Prints why the sync pauses, on stderr: the server asked to retry later (its per-account limits).
@Sendable private func printRetry(_ notice: RetryNotice) {
    let line = "the server asks to wait \(Int(notice.delay.rounded(.up))) s (retry \(notice.retry) of \(notice.maxRetries)): \(notice.detail)\n"
    FileHandle.standardError.write(Data(line.utf8))
}

/// `readersync fetch-bodies URL [ID...]`: article bodies this replica does not hold (evicted, or received by
/// reference), from the server. Not a sync: nothing is recorded or sent, and the budget is not enforced.
struct FetchBodiesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fetch-bodies",
        abstract: "Get article bodies this replica does not hold back from a sync server (all of them, or the ids given).",
        discussion: """
            Each body is stored only if its SHA-256 matches the digest this replica holds for the article's \
            version; any other is refused and counted. Fetching records no change and moves no knowledge.
            """)
    @OptionGroup var replica: ReplicaOptionsGroup
    @OptionGroup var output: OutputOptions
    @Argument(help: "The server's http:// or https:// URL.") var url: String
    @Argument(help: "Articles whose body to fetch (default: every article without its body).") var ids: [String] = []
    @Option(help: "Bearer token (default: $READERSYNC_TOKEN).") var token: String?

    func run() async throws {
        try await ReaderSync_CLI.runAsync {
            guard let scheme = SyncCommand.scheme(of: url), scheme == "http" || scheme == "https" else {
                throw ReaderSyncError.invalidInput("fetch-bodies takes a server's http:// or https:// URL, not '\(url)'")
            }
            guard let token = token ?? ProcessInfo.processInfo.environment["READERSYNC_TOKEN"], !token.isEmpty else {
                throw ReaderSyncError.invalidInput("fetching from \(url) needs a token: pass --token or set READERSYNC_TOKEN")
            }
            let opened = try replica.open()
            let transport = try URLSessionTransport(url: url, token: token, retry: retryPolicy())
            let report = try await opened.fetchBodies(ids.isEmpty ? nil : ids, using: transport)
            if output.json { return try printJSON(FetchBodiesJSON(report)) }
            say("put back \(Format.count(report.filled, "body")) from \(url)"
                + (report.missing > 0 ? "; the server holds \(report.missing) of them neither" : ""))
            if report.rejected > 0 {
                note("refused \(Format.count(report.rejected, "body")) whose SHA-256 did not match: \(report.rejectedIDs.joined(separator: ", "))")
            }
        }
    }
}

/// `fetch-bodies --json`: `readersync-fetch-bodies/1`.
struct FetchBodiesJSON: Encodable {
    var format = "readersync-fetch-bodies/1"
    var filled: Int
    var missing: Int
    var rejected: Int
    var rejectedIDs: [String]

    init(_ report: BodyFillReport) {
        filled = report.filled
        missing = report.missing
        rejected = report.rejected
        rejectedIDs = report.rejectedIDs
    }
}
