import ArgumentParser
import Foundation
import ReaderSync

struct SyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Sync with another replica file, or with a sync server (http:// or https:// URL). Both directions.")
    @OptionGroup var replica: ReplicaOptionsGroup
    @OptionGroup var output: OutputOptions
    @OptionGroup var progress: ProgressOptions
    @Argument(help: "The other replica's path, or a server URL.") var peer: String
    @Option(help: "Bearer token for a server (default: $READERSYNC_TOKEN).") var token: String?

    func run() async throws {
        try await ReaderSync_CLI.runAsync {
            if let scheme = Self.scheme(of: peer) {
                guard scheme == "http" || scheme == "https" else {
                    throw ReaderSyncError.invalidInput(
                        "\(scheme):// is not supported: sync takes a replica file or an http:// or https:// server URL")
                }
                try await syncWithServer(replica: try replica.open(), url: peer,
                                         token: token ?? ProcessInfo.processInfo.environment["READERSYNC_TOKEN"],
                                         json: output.json, reporter: progress.reporter())
                return
            }
            let local = try replica.open()
            let other = try Replica.open(at: peer)
            guard other.replicaID != local.replicaID else {
                throw ReaderSyncError.invalidInput("\(peer) is the same replica as \(replica.path)")
            }
            let reporter = progress.reporter()
            let report = try await local.sync(with: other, progress: reporter.handler)
            reporter.finish()
            let sameAccount = local.account == other.account
            if output.json {
                return try printJSON(SyncJSON(
                    peer: peer, kind: "replica",
                    sent: .init(changes: report.sent.changes, bytes: report.sent.bytes, applied: report.sent.applied,
                                duplicates: report.sent.duplicates),
                    received: .init(changes: report.received.changes, bytes: report.received.bytes,
                                    applied: report.received.applied, duplicates: report.received.duplicates),
                    readState: sameAccount, refused: [], bodiesSent: report.bodiesSent,
                    bodiesReceived: report.bodiesReceived, eviction: report.eviction.map(EvictionJSON.init),
                    peerEviction: report.peerEviction.map(EvictionJSON.init)))
            }
            say("sent \(Format.count(report.sent.changes, "change")) (\(Format.bytes(report.sent.bytes))) to \(peer): \(report.sent.applied) new")
            say("received \(Format.count(report.received.changes, "change")) (\(Format.bytes(report.received.bytes))) from \(peer): \(report.received.applied) new")
            if report.bodiesSent > 0 {
                say("put back \(Format.count(report.bodiesSent, "body", "bodies")) in \(peer) that it did not hold")
            }
            if report.bodiesReceived > 0 {
                say("got back \(Format.count(report.bodiesReceived, "body", "bodies")) from \(peer) that this replica did not hold")
            }
            if let line = StorageText.afterSync(report.eviction, of: replica.path) { say(line) }
            if let line = StorageText.afterSync(report.peerEviction, of: peer) { say(line) }
            if !sameAccount {
                say("note: \(peer) belongs to account \(other.account); read state was not exchanged")
            }
        }
    }

    /// The lowercased scheme of a URL-like peer (`ftp` of `ftp://host`), or nil for a path.
    static func scheme(of peer: String) -> String? {
        guard let range = peer.range(of: "://") else { return nil }
        let scheme = peer[..<range.lowerBound]
        guard let first = scheme.first, first.isASCII, first.isLetter,
              scheme.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "+.-".contains($0)) }) else { return nil }
        return scheme.lowercased()
    }
}

struct BundleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bundle", abstract: "Write, read and inspect bundle files that can be carried by hand.",
        subcommands: [Export.self, Import.self, Inspect.self])

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a bundle: everything held (--all) or what a far replica lacks (--for its knowledge file).")
        @OptionGroup var replica: ReplicaOptionsGroup
        @OptionGroup var output: OutputOptions
        @OptionGroup var progress: ProgressOptions
        @Option(help: "The bundle file to write.") var out: String
        @Flag(help: "Every change held (read state included: carry it to devices of this account only).") var all = false
        @Option(name: .customLong("for"), help: "A knowledge file from the receiving replica (`readersync knowledge`).")
        var forKnowledge: String?
        @Flag(name: .customLong("shared-only"), help: "Leave read state out (for a device of another account).")
        var sharedOnly = false
        @Flag(help: "Replace the output file even if it is not a bundle.") var force = false

        func validate() throws {
            guard all != (forKnowledge != nil) else { throw ValidationError("give exactly one of --all and --for FILE") }
        }

        func run() throws {
            try ReaderSync_CLI.run {
                let opened = try replica.open()
                var theirs = Knowledge()
                var account: String? = opened.account
                var receiver: ReplicaID?
                if let forKnowledge {
                    let file = try KnowledgeFile.read(from: URL(fileURLWithPath: forKnowledge))
                    theirs = file.knowledge
                    account = file.account
                    receiver = file.replica
                }
                if sharedOnly { account = nil }
                let url = URL(fileURLWithPath: out)
                try OutputFile.check(url, kind: .bundle, force: force, replicaPath: replica.path)
                let reporter = progress.reporter()
                let summary = try opened.exportBundle(to: url, for: theirs, account: account, receiver: receiver,
                                                      progress: reporter.handler)
                reporter.finish()
                let changes = Int(summary.header.changeCount)
                let carriesReadState = summary.header.ranges.contains { $0.scope == .private }
                if output.json {
                    return try printJSON(BundleExportJSON(file: out, changes: changes, bytes: summary.bytes,
                                                          readState: carriesReadState, complete: summary.isComplete))
                }
                say("wrote \(Format.count(changes, "change")) to \(out) (\(Format.bytes(summary.bytes)))")
                if all && carriesReadState {
                    say("note: it carries \(opened.account)'s read state, so only devices of \(opened.account) can import it; "
                        + "for a device of another account, export with --shared-only, or with --for its knowledge file")
                }
            }
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Merge a bundle file into this replica (whole or not at all).")
        @OptionGroup var replica: ReplicaOptionsGroup
        @OptionGroup var output: OutputOptions
        @OptionGroup var progress: ProgressOptions
        @Argument(help: "The bundle file.") var file: String

        func run() throws {
            try ReaderSync_CLI.run {
                let opened = try replica.open()
                let url = URL(fileURLWithPath: file)
                let reporter = progress.reporter()
                let result: BundleApplyResult
                do {
                    result = try opened.applyBundle(at: url, progress: reporter.handler)
                } catch let error as ReaderSyncError {
                    throw Self.explain(error, file: file, url: url, replica: opened)
                }
                reporter.finish()
                if output.json {
                    return try printJSON(BundleImportJSON(file: file, received: result.received, applied: result.applied,
                                                          duplicates: result.duplicates))
                }
                say("merged \(result.applied) new \(result.applied == 1 ? "change" : "changes") from \(file) "
                    + "(\(result.received) in bundle, \(result.duplicates) already held)")
            }
        }

        /// A refused bundle that carries another account's read state says how to get one this replica takes.
        static func explain(_ error: ReaderSyncError, file: String, url: URL, replica: Replica) -> ReaderSyncError {
            guard case .invalidBundle = error, replica.role == .device,
                  let header = try? Replica.inspectBundle(at: url) else { return error }
            let accounts = Dictionary(header.origins.map { ($0.id, $0.account) }, uniquingKeysWith: { first, _ in first })
            let foreign = header.ranges.lazy.filter { $0.scope == .private }
                .compactMap { accounts[$0.origin] }.first { $0 != replica.account }
            guard let foreign else { return error }
            return .invalidBundle(
                "\(file) carries read state of account '\(foreign)', and this replica belongs to '\(replica.account)': "
                + "ask for a bundle made with `readersync bundle export --shared-only`, or with `--for` this replica's "
                + "knowledge file (`readersync knowledge --out FILE`)")
        }
    }

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a bundle's header and counts; verifies its checksum.")
        @Argument(help: "The bundle file.") var file: String
        @OptionGroup var output: OutputOptions

        func run() throws {
            try ReaderSync_CLI.run {
                let report = try BundleInspection.inspect(at: URL(fileURLWithPath: file))
                if output.json { return try printJSON(BundleInspectJSON(report: report)) }
                say("format:      v\(report.formatVersion) (store schema v\(report.schemaVersion))")
                say("source:      \(report.source) (account \(report.account))")
                say("changes:     \(report.changeCount)  [" + report.countsByEntity.sorted { $0.key < $1.key }
                    .map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "]")
                say("payload:     \(report.payloadBytes) bytes compressed, \(report.uncompressedBytes) uncompressed")
                say(String(format: "checksum:    0x%08x (verified)", report.checksum))
                say("covers:")
                for range in report.ranges {
                    say("  \(range.account)@\(range.origin) \(range.scope): changes \(range.from + 1)...\(range.to)")
                }
            }
        }
    }
}

struct KnowledgeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "knowledge", abstract: "Write what this replica holds, so a far replica can export what it lacks.")
    @OptionGroup var replica: ReplicaOptionsGroup
    @Option(help: "The knowledge file to write.") var out: String
    @Flag(help: "Replace the file even if it is not a knowledge file.") var force = false

    func run() throws {
        try ReaderSync_CLI.run {
            let opened = try replica.open()
            let file = KnowledgeFile(replica: opened.replicaID, account: opened.account, knowledge: try opened.knowledge())
            let url = URL(fileURLWithPath: out)
            try OutputFile.check(url, kind: .knowledge, force: force, replicaPath: replica.path)
            try OutputFile.write(try file.jsonData(), to: url)
            say("wrote knowledge of \(Format.count(file.knowledge.entries.count, "origin stream")) to \(out)")
        }
    }
}
