import ArgumentParser
import Foundation
import ReaderSync

struct SyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Sync with another replica file, or with a sync server (http:// or https:// URL). Both directions.")
    @OptionGroup var replica: ReplicaOptionsGroup
    @Argument(help: "The other replica's path, or a server URL.") var peer: String
    @Option(help: "Bearer token for a server (default: $READERSYNC_TOKEN).") var token: String?
    @Flag(name: .long, help: "Print no progress lines while transferring (server sync).") var quiet = false

    func run() async throws {
        try await ReaderSync_CLI.runAsync {
            if peer.hasPrefix("http://") || peer.hasPrefix("https://") {
                try await syncWithServer(replica: try replica.open(), url: peer,
                                         token: token ?? ProcessInfo.processInfo.environment["READERSYNC_TOKEN"],
                                         quiet: quiet)
                return
            }
            let local = try replica.open()
            let other = try Replica.open(at: peer)
            guard other.replicaID != local.replicaID else {
                throw ReaderSyncError.invalidInput("\(peer) is the same replica as \(replica.path)")
            }
            let report = try local.sync(with: other)
            say("sent \(report.sent.changes) changes (\(formatBytes(report.sent.bytes))) to \(peer): \(report.sent.applied) new")
            say("received \(report.received.changes) changes (\(formatBytes(report.received.bytes))) from \(peer): \(report.received.applied) new")
            if local.account != other.account {
                say("note: \(peer) belongs to account \(other.account); read state was not exchanged")
            }
        }
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
                let summary = try opened.exportBundle(to: url, for: theirs, account: account, receiver: receiver)
                say("wrote \(summary.header.changeCount) changes to \(out) (\(formatBytes(summary.bytes)))")
            }
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Merge a bundle file into this replica (whole or not at all).")
        @OptionGroup var replica: ReplicaOptionsGroup
        @Argument(help: "The bundle file.") var file: String

        func run() throws {
            try ReaderSync_CLI.run {
                let result = try replica.open().applyBundle(at: URL(fileURLWithPath: file))
                say("merged \(result.applied) new changes from \(file) (\(result.received) in bundle, \(result.duplicates) already held)")
            }
        }
    }

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a bundle's header and counts; verifies its checksum.")
        @Argument(help: "The bundle file.") var file: String
        @OptionGroup var output: OutputOptions

        func run() throws {
            try ReaderSync_CLI.run {
                let report = try BundleInspection.inspect(at: URL(fileURLWithPath: file))
                if output.json { return try printJSON(report) }
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
            say("wrote knowledge of \(file.knowledge.entries.count) origin streams to \(out)")
        }
    }
}
