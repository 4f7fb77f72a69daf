import ArgumentParser
import Foundation
import ReaderSync
import Synchronization

/// `--progress` and `--quiet` of the commands that can run long (import, sync, bundle export and import).
struct ProgressOptions: ParsableArguments {
    @Flag(help: "Show progress on stderr even when it is not a terminal (then one line per second).")
    var progress = false

    @Flag(help: "Show no progress.")
    var quiet = false

    func validate() throws {
        if progress && quiet { throw ValidationError("give at most one of --progress and --quiet") }
    }

    /// A reporter for these options: progress on stderr when it is a terminal (redrawn in place) or with
    /// --progress (lines), never with --quiet.
    func reporter() -> ProgressReporter {
        let terminal = Terminal.isTerminal(.standardError)
        if quiet { return ProgressReporter(mode: .off) }
        if terminal { return ProgressReporter(mode: .redraw) }
        return ProgressReporter(mode: progress ? .lines : .off)
    }
}

/// Shows the progress of one long command on stderr, with counts, bytes and rates.
///
/// On a terminal one line is redrawn in place at most ten times a second and erased at the end (the summary
/// follows on stdout); elsewhere (`--progress`) a line is printed at most once a second, plus one when each
/// phase completes. Thread-safe: library callbacks arrive on the thread doing the work.
final class ProgressReporter: Sendable {
    enum Mode: Sendable { case off, redraw, lines }

    private struct State {
        var lastDraw: ContinuousClock.Instant?
        var phase = ""
        var phaseStart = ContinuousClock.now
        var lineShown = false
    }

    let mode: Mode
    private let state = Mutex(State())
    private static let active = Mutex<ProgressReporter?>(nil)

    init(mode: Mode) {
        self.mode = mode
        if mode != .off { Self.active.withLock { $0 = self } }
    }

    /// Whether anything is shown.
    var isOn: Bool { mode != .off }

    /// Erases the line of the reporter in use, if any (before an error or a note).
    static func clearActive() {
        active.withLock { $0 }?.clear()
    }

    /// Erases the redrawn line and stops reporting.
    func finish() {
        clear()
        Self.active.withLock { if $0 === self { $0 = nil } }
    }

    // MARK: - Library progress

    /// A library callback: import, export, apply.
    func report(_ step: OperationProgress) {
        let key = "\(step.direction?.rawValue ?? "")-\(step.phase.rawValue)"
        show(phase: key, complete: step.isComplete) { elapsed in Self.describe(step, elapsed: elapsed) }
    }

    /// A server sync page.
    func report(_ step: ServerSyncProgress) {
        show(phase: step.phase.rawValue, complete: step.isComplete) { elapsed in Self.describe(step, elapsed: elapsed) }
    }

    /// The handler to pass to library calls; nil when nothing is shown, so the library skips the work.
    var handler: ProgressHandler? {
        guard isOn else { return nil }
        return { [self] step in report(step) }
    }

    // MARK: - Drawing

    private func show(phase: String, complete: Bool, _ text: (Double) -> String) {
        guard mode != .off else { return }
        let now = ContinuousClock.now
        state.withLock { state in
            if state.phase != phase {
                state.phase = phase
                state.phaseStart = now
                state.lastDraw = nil
            }
            let interval: Duration = mode == .redraw ? .milliseconds(100) : .seconds(1)
            if !complete, let last = state.lastDraw, now - last < interval { return }
            state.lastDraw = now
            let elapsed = Self.seconds(now - state.phaseStart)
            let line = text(elapsed)
            switch mode {
            case .redraw:
                Output.standardError.write("\r\u{1B}[K" + line)
                state.lineShown = true
            case .lines:
                Output.standardError.write(line + "\n")
            case .off:
                break
            }
        }
    }

    private func clear() {
        guard mode == .redraw else { return }
        state.withLock { state in
            if state.lineShown {
                Output.standardError.write("\r\u{1B}[K")
                state.lineShown = false
            }
        }
    }

    private static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    // MARK: - Text

    /// `importing: 12,500 articles, 42.1 MiB of 342.0 MiB (12%), 1,850 articles/s, 6.2 MiB/s`.
    static func describe(_ step: OperationProgress, elapsed: Double) -> String {
        let noun = step.phase == .importing ? "article" : "change"
        var parts: [String] = []
        if let total = step.total, total > 0 {
            parts.append("\(Format.grouped(step.completed)) of \(Format.grouped(total)) \(noun)s (\(percent(step.completed, total)))")
        } else {
            parts.append("\(Format.grouped(step.completed)) \(step.completed == 1 ? noun : noun + "s")")
        }
        switch step.phase {
        case .importing:
            if let totalBytes = step.totalBytes, totalBytes > 0 {
                parts.append("\(Format.bytes(step.bytes)) of \(Format.bytes(totalBytes)) (\(percent(step.bytes, totalBytes)))")
            } else {
                parts.append(Format.bytes(step.bytes))
            }
        case .exporting:
            if step.isComplete { parts.append("\(Format.bytes(step.bytes)) written") }
        case .applying:
            if let totalBytes = step.totalBytes { parts.append("bundle of \(Format.bytes(totalBytes))") }
        }
        if elapsed >= 0.05 {
            parts.append("\(Format.grouped(Int(Double(step.completed) / elapsed))) \(noun)s/s")
            if step.phase == .importing && step.bytes > 0 {
                parts.append("\(Format.bytes(Int64(Double(step.bytes) / elapsed)))/s")
            }
        }
        if step.isComplete { parts.append("done in \(Format.duration(elapsed))") }
        let direction = step.direction.map { "\($0.rawValue), " } ?? ""
        return "\(direction)\(step.phase.rawValue): " + parts.joined(separator: ", ")
    }

    /// `pulling: 3 pages, 6,000 of 20,000 changes (30%), 2.1 MiB, 1.2 MiB/s` (the total when the server says how
    /// many remain), `pushing: 3 pages, 6,000 changes, 2.1 MiB, 1.2 MiB/s`.
    static func describe(_ step: ServerSyncProgress, elapsed: Double) -> String {
        let changes: String
        if let remaining = step.remainingChanges, !step.isComplete, remaining > 0 {
            let total = step.changes + remaining
            changes = "\(Format.grouped(step.changes)) of \(Format.grouped(total)) changes (\(percent(step.changes, total)))"
        } else {
            changes = "\(Format.grouped(step.changes)) \(step.changes == 1 ? "change" : "changes")"
        }
        var parts = [Format.count(step.pages, "page"), changes, Format.bytes(step.bytes)]
        if elapsed >= 0.05 {
            parts.append("\(Format.grouped(Int(Double(step.changes) / elapsed))) changes/s")
            parts.append("\(Format.bytes(Int64(Double(step.bytes) / elapsed)))/s")
        }
        if step.isComplete { parts.append("done in \(Format.duration(elapsed))") }
        return "\(step.phase.rawValue): " + parts.joined(separator: ", ")
    }

    private static func percent<T: BinaryInteger>(_ part: T, _ whole: T) -> String {
        guard whole > 0 else { return "0%" }
        return "\(min(100, Int(Double(part) * 100 / Double(whole))))%"
    }
}
