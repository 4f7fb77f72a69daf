// ReaderSync benchmarks. Every figure is reported next to a baseline measured in the same run, as a ratio,
// because the machines this runs on are shared and noisy. Nothing here asserts on timings: the exit status is
// 0 unless something failed.
//
//   1 local write:   markRead vs. the same UPDATE alone on a plain GRDB table, own transaction each.
//   2 apply:         changes/s merging one bundle of mixed changes into a fresh file replica vs. GRDB INSERTs of as
//                    many rows in one transaction; at several sizes, to show growth.
//   3 bundle size:   bytes per change (read state, comments) and per article vs. gzip -6 JSON Lines of the changes.
//   4 initial sync:  10k and 100k articles into an empty replica, replica to replica and through the reference
//                    server; time and peak RSS of the receiving process vs. a plain insert and an empty process.
//   5 storage:       one replica's file after a simulated year vs. the size of its live data (canonical dump).
//   6 search:        Replica.search p50/p99 on 100k articles vs. the raw FTS5 MATCH and a LIKE scan of titles;
//                    the index's share of the replica; applying the articles with vs. without the index.
//   7 budget:        enforceStorageBudget() on that replica (70% read, 50 MB budget) vs. the same UPDATEs on a copy
//                    without the index; sizes before and after; one body put back.
//
// Run it through Tools/scripts/bench.sh (release build): `bench.sh [--quick] [--seed N] [--json FILE]`.
import Foundation
import ReaderSync

let arguments = Array(CommandLine.arguments.dropFirst())

// Child modes: a fresh process each, so that peak memory is the child's own.
if let mode = arguments.first, mode.hasPrefix("--child-") || mode == "--emit-apply-bundle" {
    do {
        let rest = Array(arguments.dropFirst())
        func arg(_ i: Int) throws -> String {
            guard i < rest.count else { throw BenchError("\(mode): missing argument \(i + 1)") }
            return rest[i]
        }
        switch mode {
        case "--child-empty": try SyncChild.empty(dir: try arg(0))
        case "--child-r2r": try SyncChild.replicaToReplica(source: try arg(0), dir: try arg(1))
        case "--child-server": try await SyncChild.server(url: try arg(0), token: try arg(1), dir: try arg(2))
        case "--child-baseline-articles":
            try SyncChild.baselineInsert(count: Int(try arg(0)) ?? 0, seed: UInt64(try arg(1)) ?? 0, dir: try arg(2))
        case "--child-apply":
            // Applies a bundle file into a fresh file replica (for profiling: `perf record -g readersync-bench --child-apply F`).
            let seconds = try applyIntoFreshReplica(URL(fileURLWithPath: try arg(0)), expecting: nil)
            childResult(["seconds": seconds, "peak": Double(peakRSS())])
        case "--emit-apply-bundle":
            // Writes the apply benchmark's bundle of about N changes to PATH: `--emit-apply-bundle N PATH [SEED]`.
            let dir = try TempDir("emit")
            defer { dir.cleanUp() }
            let seed = rest.count > 2 ? UInt64(rest[2]) ?? Options().seed : Options().seed
            let source = try buildApplySource(target: Int(try arg(0)) ?? 100_000, seed: seed, dir: dir, wantRows: false)
            let destination = URL(fileURLWithPath: try arg(1))
            try? FileManager.default.removeItem(at: destination)
            try FileManager.default.copyItem(at: source.bundle, to: destination)
            print("\(source.changes) changes, \(source.bytes) bytes: \(source.composition)")
        default:
            throw BenchError("unknown child mode \(mode)")
        }
        exit(0)
    } catch {
        FileHandle.standardError.write(Data("readersync-bench \(mode): error: \(error)\n".utf8))
        exit(1)
    }
}

struct Report: Encodable {
    var machine: Machine
    var mode: String
    var seed: UInt64
    var startedAt: String
    var seconds: Double
    var figures: [Figure]
    var errors: [String]
}

do {
    let options = try Options.parse(arguments)
    let machine = Machine.current()
    let started = Date()
    print("ReaderSync benchmarks (\(options.quick ? "quick" : "full") mode, seed \(options.seed))")
    print("machine: \(machine.nproc) cores, \(machine.cpu), \(String(format: "%.1f", machine.memoryGiB)) GiB")
    print("swift:   \(machine.swift)")
    print("os:      \(machine.os)")
    print("")

    var figures: [Figure] = []
    var errors: [String] = []
    func section(_ name: String, _ body: () async throws -> [Figure]) async {
        guard options.runs(name) else { return }
        let t0 = Date()
        say("== \(name)")
        do {
            figures += try await body()
        } catch {
            errors.append("\(name): \(error)")
            say("error in \(name): \(error)")
        }
        say("== \(name) took " + String(format: "%.0f s", Date().timeIntervalSince(t0)))
    }
    await section("local") { try benchLocalWrite(options) }
    await section("apply") { try benchApply(options) }
    await section("size") { try benchBundleSize(options) }
    await section("sync") { try await benchInitialSync(options) }
    await section("year") { try benchYear(options) }
    // Search and budget share one corpus (built once); budget evicts, so it runs after search.
    let bodiesCorpus = BodiesCorpusCache()
    await section("search") { try benchSearch(options, try bodiesCorpus.get(options)) }
    await section("budget") { try await benchBudget(options, try bodiesCorpus.get(options)) }
    bodiesCorpus.cleanUp()

    let seconds = Date().timeIntervalSince(started)
    printTable(figures)
    let missed = figures.filter { $0.meetsTarget == false }.map(\.name)
    print("")
    print(missed.isEmpty ? "all targets met" : "targets not met: \(missed.joined(separator: "; "))")
    print(String(format: "total time: %.0f s", seconds))
    if !errors.isEmpty {
        print("errors:")
        for error in errors { print("  \(error)") }
    }
    if let path = options.jsonPath {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let report = Report(machine: machine, mode: options.quick ? "quick" : "full", seed: options.seed,
                            startedAt: ISO8601DateFormatter().string(from: started), seconds: seconds, figures: figures,
                            errors: errors)
        try encoder.encode(report).write(to: URL(fileURLWithPath: path))
        print("wrote \(path)")
    }
    exit(errors.isEmpty ? 0 : 1)
} catch {
    FileHandle.standardError.write(Data("readersync-bench: error: \(error)\n".utf8))
    exit(1)
}
