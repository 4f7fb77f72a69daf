import Foundation
import ReaderSync

/// Syncs `replica` with a sync server over HTTP: pushes what the server lacks, then pulls pages of what the
/// replica lacks. Prints a summary on stdout, progress lines on stderr unless `quiet`, and every change the
/// server refused (they stay in this replica).
func syncWithServer(replica: Replica, url: String, token: String?, quiet: Bool) async throws {
    guard let token, !token.isEmpty else {
        throw ReaderSyncError.invalidInput("syncing with \(url) needs a token: pass --token or set READERSYNC_TOKEN")
    }
    let transport = try URLSessionTransport(url: url, token: token, retry: retryPolicy(), onRetry: quiet ? nil : printRetry)
    let report = try await replica.sync(using: transport, progress: quiet ? nil : printProgress)
    let pushed = report.pushed
    let pulled = report.pulled
    say("sent \(pushed.changes) changes (\(formatBytes(pushed.bytes))) to \(url): \(pushed.applied) new, \(pushed.duplicates) already held")
    say("received \(pulled.changes) changes (\(formatBytes(pulled.bytes))) from \(url): \(pulled.applied) new")
    if !report.refused.isEmpty {
        say("the server refused \(report.refused.count) changes; they stay in this replica:")
        for refused in report.refused {
            say("  \(refused.entity) \(refused.key) (\(refused.field)): \(refused.reason)")
        }
    }
}

/// Prints one progress line on stderr.
@Sendable private func printProgress(_ step: ServerSyncProgress) {
    let verb = step.phase == .pushing ? "pushed" : "pulled"
    let done = step.isComplete ? ", done" : ""
    let line = "\(verb) page \(step.pages): \(step.changes) changes (\(formatBytes(step.bytes)))\(done)\n"
    FileHandle.standardError.write(Data(line.utf8))
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
