import Foundation
import Testing

/// Several `readersync` processes writing one replica file at once (WAL mode and a busy timeout make them wait
/// for each other instead of failing).
@Suite("readersync: concurrent processes")
final class ConcurrencyTests {
    let box: Sandbox
    init() throws { box = try Sandbox() }

    @Test("8 processes writing one replica at once all succeed, and the log holds all their entries")
    func eightWriters() throws {
        try box.replicaWithFixture("r.db")
        let lastBefore = try #require(try box.lastSequence("r.db"))

        // Each writes different targets, so compaction of superseded entries cannot hide any of them.
        let commands: [[String]] = [
            ["progress", "--db", "r.db", FixtureIDs.main, "0.25"],
            ["save", "--db", "r.db", FixtureIDs.stocks],
            ["read", "--db", "r.db", FixtureIDs.gaza],
            ["save", "--db", "r.db", FixtureIDs.hamas],
            ["comment", "add", "--db", "r.db", FixtureIDs.main, "concurrent one"],
            ["comment", "add", "--db", "r.db", FixtureIDs.main, "concurrent two"],
            ["comment", "add", "--db", "r.db", FixtureIDs.gaza, "concurrent three"],
            ["comment", "add", "--db", "r.db", FixtureIDs.hamas, "concurrent four"],
        ]
        let running = try commands.map { try box.start($0) }
        let results = try running.map { try $0.finish() }
        for result in results {
            #expect(result.status == 0, "\(result)")
            #expect(result.stderr.isEmpty, "\(result)")
        }

        // 4 read-state entries and 4 comments of 2 entries each.
        let status = try box.status("r.db")
        #expect(try box.lastSequence("r.db") == lastBefore + 12, "\(status)")
        #expect(status["comments"] as? Int == 4)
        #expect(status["readStates"] as? Int == 4)

        let log = try box.ok("log", "--db", "r.db").lines
        #expect(log.count == lastBefore + 12, "\(log)")
        // The third column is origin#seq: "local#n" for this replica's own changes.
        let sequences = log.compactMap { line in
            line.components(separatedBy: "\t").dropFirst(2).first.flatMap { Int($0.replacingOccurrences(of: "local#", with: "")) }
        }.sorted()
        #expect(sequences == Array(1...(lastBefore + 12)), "sequence numbers are gapless")
        #expect(log.contains { $0.contains("readState \(FixtureIDs.main) .progress = 0.25") })
        #expect(log.contains { $0.contains("readState \(FixtureIDs.stocks) .saved = ") })
        #expect(log.contains { $0.contains("readState \(FixtureIDs.gaza) .read = ") })
        #expect(log.contains { $0.contains("readState \(FixtureIDs.hamas) .saved = ") })
        for text in ["concurrent one", "concurrent two", "concurrent three", "concurrent four"] {
            #expect(log.contains { $0.hasSuffix(".body = \"\(text)\"") }, "\(text) missing from the log")
        }
        // The hybrid timestamps of one replica's own entries never go backwards along its sequence.
        let stamps = log.compactMap { $0.split(separator: "\t").dropFirst().first.map(String.init) }
        #expect(stamps == stamps.sorted { hlcOrder($0, $1) }, "\(stamps)")
    }

    @Test("8 workers, each running commands back to back on one replica: every command succeeds")
    func sustainedContention() throws {
        try box.replicaWithFixture("r.db")
        // Worker i comments twice, then writes one read-state field no other worker writes, then reads.
        let scripts: [[[String]]] = (0..<8).map { i in
            let article = FixtureIDs.all[i % 4]
            return [
                ["comment", "add", "--db", "r.db", article, "worker \(i), first"],
                i < 4 ? ["progress", "--db", "r.db", article, "0.5"] : ["save", "--db", "r.db", article],
                ["comment", "add", "--db", "r.db", article, "worker \(i), second"],
                i % 2 == 0 ? ["list", "--db", "r.db", "--json"] : ["dump", "--db", "r.db"],
            ]
        }
        let results = try runWorkers(scripts)
        #expect(results.count == 32)
        for result in results {
            #expect(result.status == 0 && result.stderr.isEmpty, "\(result)")
        }
        let status = try box.status("r.db")
        #expect(status["comments"] as? Int == 16)
        #expect(try box.lastSequence("r.db") == 4 + 8 * 2 * 2 + 8, "\(status)")
        let log = try box.ok("log", "--db", "r.db").lines
        #expect(log.count == 4 + 8 * 2 * 2 + 8)
        for i in 0..<8 {
            for which in ["first", "second"] {
                #expect(log.contains { $0.hasSuffix(".body = \"worker \(i), \(which)\"") }, "worker \(i) \(which) missing")
            }
        }
    }

    /// Runs each script on its own thread, its commands one after another, all scripts at once; returns every
    /// result.
    private func runWorkers(_ scripts: [[[String]]]) throws -> [CLIResult] {
        let collected = Collected()
        let group = DispatchGroup()
        let sandbox = UncheckedBox(box)
        for script in scripts {
            group.enter()
            let thread = Thread {
                defer { group.leave() }
                for args in script {
                    do { collected.append(.success(try sandbox.value.start(args).finish())) } catch {
                        collected.append(.failure(error))
                    }
                }
            }
            thread.start()
        }
        group.wait()
        return try collected.results.map { try $0.get() }
    }
}

/// Results gathered from several threads.
private final class Collected: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Result<CLIResult, any Error>] = []
    func append(_ item: Result<CLIResult, any Error>) { lock.lock(); items.append(item); lock.unlock() }
    var results: [Result<CLIResult, any Error>] { lock.lock(); defer { lock.unlock() }; return items }
}

/// Hands a sandbox to worker threads; it is only read (its directory) and every run uses its own files.
private struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// Orders two `log` timestamps of the form `2025-07-03T12:00:00.000Z#3`: by time text, then counter.
private func hlcOrder(_ a: String, _ b: String) -> Bool {
    let pa = a.split(separator: "#"), pb = b.split(separator: "#")
    if pa.first != pb.first { return String(pa.first ?? "") < String(pb.first ?? "") }
    return Int(pa.last ?? "0") ?? 0 < Int(pb.last ?? "0") ?? 0
}
