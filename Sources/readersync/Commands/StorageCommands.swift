import ArgumentParser
import Foundation
import ReaderSync

/// `readersync budget set|show|clear`: the replica's storage budget.
struct BudgetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "budget", abstract: "Set, show or clear the replica's storage budget (how much disk it may use).",
        discussion: """
            Over budget (after a sync, or on `readersync evict`), the replica evicts article bodies: read and not \
            saved first, least recently opened first, then unread articles older than --keep-unread. Titles, \
            metadata, read state and comments always stay, and so do saved articles' bodies and bodies no peer has \
            acknowledged yet. An evicted body comes back from a peer replica (`readersync sync`) or the server.
            """,
        subcommands: [SetBudget.self, Show.self, Clear.self])

    struct SetBudget: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set",
            abstract: "Set the storage budget (it evicts nothing by itself: the next sync or `readersync evict` does).")
        @OptionGroup var replica: ReplicaOptionsGroup
        @Argument(help: ArgumentHelp(
            "The most disk the replica may use: a number and B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024), such as 50MB or 512KiB.",
            valueName: "size"))
        var size: String
        @Option(name: .customLong("keep-unread"), help: ArgumentHelp(
            "Unread articles published less than this long ago keep their body: a number and s, m, h, d or w, such as 7d (default: the current setting, else 7d).",
            valueName: "duration"))
        var keepUnread: String?

        func run() throws {
            try ReaderSync_CLI.run {
                let bytes = try StorageBudget.parseSize(size)
                let keep = try keepUnread.map(StorageBudget.parseDuration)
                let opened = try replica.open()
                var budget = StorageBudget(bytes: bytes)
                if let keep {
                    budget.keepUnreadFor = keep
                } else if let current = try opened.storageBudget() {
                    budget.keepUnreadFor = current.keepUnreadFor
                }
                try opened.setStorageBudget(budget)
                let used = try opened.storageBytes()
                say("storage budget: \(StorageText.budget(budget))")
                if used > budget.bytes {
                    say("in use: \(StorageBudget.format(bytes: used)), over budget; `readersync evict` evicts bodies now (the next sync also does)")
                } else {
                    say("in use: \(StorageBudget.format(bytes: used)), within budget")
                }
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the storage budget, the bytes in use, the file's size and how many bodies are not held.")
        @OptionGroup var replica: ReplicaOptionsGroup
        @OptionGroup var output: OutputOptions

        func run() throws {
            try ReaderSync_CLI.run {
                let opened = try replica.open()
                let figures = try StorageFigures.measure(opened)
                if output.json { return try printJSON(BudgetShowJSON(storage: figures)) }
                if let budget = figures.budget {
                    say("budget:    \(StorageText.budget(budget))")
                    let used = StorageBudget.format(bytes: figures.bytesInUse)
                    if figures.isOverBudget {
                        say("in use:    \(used), over budget by \(StorageBudget.format(bytes: figures.bytesInUse - budget.bytes)) (`readersync evict` evicts now)")
                    } else {
                        say("in use:    \(used), within budget (\(StorageBudget.format(bytes: budget.bytes - figures.bytesInUse)) left)")
                    }
                } else {
                    say("budget:    none (`readersync budget set SIZE` sets one)")
                    say("in use:    \(StorageBudget.format(bytes: figures.bytesInUse))")
                }
                say("file:      \(StorageBudget.format(bytes: figures.fileBytes))")
                say("bodies not held: \(figures.bodiesNotHeld)")
            }
        }
    }

    struct Clear: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove the storage budget: nothing is evicted from then on.")
        @OptionGroup var replica: ReplicaOptionsGroup

        func run() throws {
            try ReaderSync_CLI.run {
                let opened = try replica.open()
                guard let previous = try opened.storageBudget() else {
                    say("no storage budget was set")
                    return
                }
                try opened.setStorageBudget(nil)
                say("cleared the storage budget (was \(StorageBudget.format(bytes: previous.bytes))); bodies are no longer evicted")
            }
        }
    }
}

/// `readersync evict [ID]`: enforce the storage budget now, or evict one article's body.
struct EvictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evict",
        abstract: "Evict article bodies now to stay within the storage budget, or evict one article's body.",
        discussion: """
            Without an id: what a sync does afterwards, now. With an id: that article's body goes whatever the \
            budget, unless the article is saved or its body was written here and no peer has acknowledged it yet \
            (it may be the only copy); that refusal is an error. Eviction records no change; `readersync sync` with \
            a replica file that holds the body, or the server, brings it back.
            """)
    @OptionGroup var replica: ReplicaOptionsGroup
    @OptionGroup var output: OutputOptions
    @Argument(help: "The article whose body to evict (default: enforce the budget).") var id: String?

    func run() throws {
        try ReaderSync_CLI.run {
            let opened = try replica.open()
            guard let id else {
                let report = try opened.enforceStorageBudget()
                if output.json { return try printJSON(EvictJSON(article: nil, report: report)) }
                for line in StorageText.enforced(report) { say(line) }
                return
            }
            let detail = try opened.article(id)
            let budget = try opened.storageBudget()
            let before = try opened.storageBytes()
            var evicted = false
            if detail.bodyState == .held {
                guard try opened.evictBody(of: id) else {
                    if detail.readState.isSaved {
                        throw ReaderSyncError.invalidInput("\(id) is saved, and saved articles keep their body; unsave it first")
                    }
                    throw ReaderSyncError.invalidInput(
                        "the body of \(id) was written on this replica and no peer has acknowledged holding it yet, "
                        + "so it may be the only copy; sync with another replica or the server first")
                }
                evicted = true
            }
            let after = try opened.storageBytes()
            let bodyBytes = evicted ? Int64(detail.article.body.utf8.count) : 0
            let report = EvictionReport(budget: budget, bytesBefore: before, bytesAfter: after,
                                        fileBytes: Int64(try opened.status().databaseBytes), evicted: evicted ? 1 : 0,
                                        evictedBodyBytes: bodyBytes, stillOverBudget: budget.map { after > $0.bytes } ?? false)
            if output.json { return try printJSON(EvictJSON(article: id, report: report)) }
            if evicted {
                say("evicted the body of \(id) (\(StorageBudget.format(bytes: bodyBytes)) of text); "
                    + "\(StorageBudget.format(bytes: before)) → \(StorageBudget.format(bytes: after)) in use")
            } else {
                say("the body of \(id) is not held here already (\(StorageText.bodyState(detail.bodyState))); nothing to evict")
            }
        }
    }
}

/// The storage figures `budget show` and `status` print.
struct StorageFigures {
    var budget: StorageBudget?
    /// Bytes of the database in use (what the budget limits).
    var bytesInUse: Int64
    /// The database file's size.
    var fileBytes: Int64
    /// Articles whose body is evicted or was never received.
    var bodiesNotHeld: Int
    var searchIndexBytes: Int64

    var isOverBudget: Bool { budget.map { bytesInUse > $0.bytes } ?? false }

    static func measure(_ replica: Replica, status: ReplicaStatus? = nil) throws -> StorageFigures {
        let status = try status ?? replica.status()
        return StorageFigures(budget: try replica.storageBudget(), bytesInUse: try replica.storageBytes(),
                              fileBytes: Int64(status.databaseBytes),
                              bodiesNotHeld: try replica.articlesWithoutBody(limit: Int.max).count,
                              searchIndexBytes: try replica.searchIndexBytes())
    }
}

/// Sentences about budgets, eviction and bodies, shared by `budget`, `evict`, `sync`, `show` and `status`.
enum StorageText {
    /// `50.0 MB; unread articles younger than 7 days keep their body`.
    static func budget(_ budget: StorageBudget) -> String {
        "\(StorageBudget.format(bytes: budget.bytes)) (\(Format.grouped(Int(budget.bytes))) bytes); "
            + "unread articles younger than \(age(budget.keepUnreadFor)) keep their body"
    }

    /// `7 days`, `36 hours`, `90 minutes`, `0 seconds`.
    static func age(_ seconds: TimeInterval) -> String {
        let s = Int(seconds.rounded())
        if s > 0 && s % 86_400 == 0 { return Format.count(s / 86_400, "day") }
        if s > 0 && s % 3600 == 0 { return Format.count(s / 3600, "hour") }
        if s > 0 && s % 60 == 0 { return Format.count(s / 60, "minute") }
        return Format.count(s, "second")
    }

    /// `evicted` or `not received`.
    static func bodyState(_ state: BodyState) -> String {
        switch state {
        case .held: return "held"
        case .evicted: return "evicted"
        case .notReceived: return "not received"
        }
    }

    /// What is kept whatever the budget.
    static func protected(_ budget: StorageBudget?) -> String {
        "saved articles, unread articles younger than \(age(budget?.keepUnreadFor ?? 7 * 86_400)), bodies no peer has "
            + "acknowledged yet, titles, read state and comments"
    }

    /// `readersync evict`'s report.
    static func enforced(_ report: EvictionReport) -> [String] {
        guard let budget = report.budget else {
            return ["no storage budget is set, so nothing was evicted; `readersync budget set SIZE` sets one"]
        }
        let limit = StorageBudget.format(bytes: budget.bytes)
        if report.evicted == 0 {
            let used = StorageBudget.format(bytes: report.bytesAfter)
            if !report.stillOverBudget { return ["nothing to evict: \(used) in use, within the budget of \(limit)"] }
            return ["evicted 0 bodies: \(used) in use, still over the budget of \(limit); what is left is kept "
                    + "(\(protected(budget)))"]
        }
        var lines = ["evicted \(Format.count(report.evicted, "body", "bodies")) "
                     + "(\(StorageBudget.format(bytes: report.evictedBodyBytes)) of text): "
                     + "\(StorageBudget.format(bytes: report.bytesBefore)) → \(StorageBudget.format(bytes: report.bytesAfter)) "
                     + "in use; the file is \(StorageBudget.format(bytes: report.fileBytes))"]
        if report.stillOverBudget {
            lines.append("still over the budget of \(limit): what is left is kept (\(protected(budget)))")
        } else {
            lines.append("within the budget of \(limit)")
        }
        return lines
    }

    /// One line for `sync`, or nil when nothing was evicted: `storage budget of PLACE: evicted 3 bodies (…)`.
    static func afterSync(_ report: EvictionReport?, of place: String) -> String? {
        guard let report, report.evicted > 0, let budget = report.budget else { return nil }
        return "storage budget of \(place): evicted \(Format.count(report.evicted, "body", "bodies")) "
            + "(\(StorageBudget.format(bytes: report.bytesBefore)) → \(StorageBudget.format(bytes: report.bytesAfter)) in use, "
            + "budget \(StorageBudget.format(bytes: budget.bytes))\(report.stillOverBudget ? ", still over budget" : ""))"
    }
}
