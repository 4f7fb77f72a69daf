// ReaderSync benchmarks. Every figure is reported next to a baseline measured in the same run, as a ratio,
// because the machines this runs on are shared and noisy.
//
//   bundle-size:  bytes per change of a delta bundle for a realistic mix (read marks, progress, saves,
//                 comments, article versions) vs. the same changes as gzip-compressed JSON Lines.
//   apply:        time to merge a bundle into a fresh replica vs. decoding the same changes from JSON Lines.
//   memory:       peak resident memory of a process that applies a large bundle file (streamed) vs. a process
//                 that only opens a replica: the difference, against the bundle's uncompressed size.
import Foundation
import ReaderSync
#if canImport(Glibc)
import Glibc
#endif

/// Peak resident set size of this process, in bytes. On Linux this is VmHWM from /proc/self/status: `ru_maxrss`
/// survives exec, so a child spawned by a large parent would report the parent's peak.
func peakRSS() -> Int {
    #if os(Linux)
    if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
       let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
       let kib = Int(line.split(separator: " ").dropFirst().first ?? "") {
        return kib * 1024
    }
    #endif
    var usage = rusage()
    #if os(Linux)
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Int(usage.ru_maxrss) * 1024
    #else
    getrusage(RUSAGE_SELF, &usage)
    return Int(usage.ru_maxrss)
    #endif
}

// Child modes, run by the memory benchmark in a fresh process each.
let args = CommandLine.arguments
if args.count >= 3, args[1] == "--child-apply" || args[1] == "--child-baseline" {
    do {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rs-bench-child-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let replica = try Replica.create(at: dir.appendingPathComponent("r.db").path, account: "alice")
        if args[1] == "--child-apply" { try replica.applyBundle(at: URL(fileURLWithPath: args[2])) }
        print(peakRSS())
        exit(0)
    } catch {
        FileHandle.standardError.write(Data("readersync-bench child: \(error)\n".utf8))
        exit(1)
    }
}

func childPeak(_ mode: String, _ file: String) throws -> Int {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: args[0])
    process.arguments = [mode, file]
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0,
          let value = Int(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
        throw ReaderSyncError.storage("benchmark child \(mode) failed")
    }
    return value
}

struct Mix {
    var articles = 200
    var readMarks = 3000
    var progress = 6000
    var saves = 800
    var comments = 1500
    var edits = 300
}

func gzipSize(_ data: Data) throws -> Int {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rs-bench-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let input = dir.appendingPathComponent("changes.jsonl")
    try data.write(to: input)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["gzip", "-6", "-k", input.path]
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw ReaderSyncError.storage("gzip failed") }
    let attributes = try FileManager.default.attributesOfItem(atPath: input.path + ".gz")
    return (attributes[.size] as? Int) ?? 0
}

func makeReplica(mix: Mix, seed: UInt64) throws -> Replica {
    var rng = SystemRandomNumberGenerator()
    _ = seed
    let clock = ManualWallClock(millis: 1_751_500_000_000)
    let replica = try Replica.inMemory(account: "alice", options: ReplicaOptions(wallClock: clock))
    var articles: [Article] = []
    for i in 0..<mix.articles {
        articles.append(Article(
            id: "article-\(i)-" + String(repeating: "x", count: 20), source: ["Associated Press", "Reuters", "Globe and Mail"][i % 3],
            url: "https://news.example/\(i)", title: "Headline number \(i) about something newsworthy",
            byline: "Reporter \(i % 17)",
            body: (0..<8).map { p in "Paragraph \(p) of article \(i): " + String(repeating: "words and more words ", count: 12) }
                .joined(separator: "\n\n"),
            topics: ["world", "politics"], related: ["article-\((i + 1) % mix.articles)"],
            publishedAt: Date(timeIntervalSince1970: 1_751_000_000 + Double(i) * 60)))
    }
    try replica.upsertArticles(articles)
    let ids = articles.map(\.id)
    var commentIDs: [String] = []
    for step in 0..<(mix.readMarks + mix.progress + mix.saves + mix.comments + mix.edits) {
        clock.advance(by: Int64.random(in: 1...5000, using: &rng))
        let id = ids[Int.random(in: 0..<ids.count, using: &rng)]
        switch Int.random(in: 0..<(mix.readMarks + mix.progress + mix.saves + mix.comments + mix.edits), using: &rng) {
        case ..<mix.readMarks: try replica.markRead(id)
        case ..<(mix.readMarks + mix.progress): try replica.setProgress(id, Double(step % 100) / 100)
        case ..<(mix.readMarks + mix.progress + mix.saves): try replica.save(id)
        case ..<(mix.readMarks + mix.progress + mix.saves + mix.comments):
            let c = try replica.addComment(to: id, body: "A reader's comment number \(step), a sentence or two long.")
            commentIDs.append(c.id)
        default:
            if let c = commentIDs.randomElement(using: &rng) { try? replica.editComment(c, body: "Edited comment \(step).") }
        }
    }
    return replica
}

/// The baseline's JSON of a change: the fields a change has, values as plain JSON, nothing derived.
struct PlainChange: Codable {
    var origin: String, seq: UInt64, hlc: UInt64, entity: String, key: String, field: String
    var value: ChangeValue
    init(_ c: Change) {
        origin = c.origin.description; seq = c.seq; hlc = c.hlc.rawValue; entity = c.entity.description
        key = c.key; field = c.field; value = c.value
    }
    enum CodingKeys: String, CodingKey { case origin, seq, hlc, entity, key, field, value }
    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        origin = try c.decode(String.self, forKey: .origin); seq = try c.decode(UInt64.self, forKey: .seq)
        hlc = try c.decode(UInt64.self, forKey: .hlc); entity = try c.decode(String.self, forKey: .entity)
        key = try c.decode(String.self, forKey: .key); field = try c.decode(String.self, forKey: .field)
        if try c.decodeNil(forKey: .value) { value = .null }
        else if let b = try? c.decode(Bool.self, forKey: .value) { value = .bool(b) }
        else if let i = try? c.decode(Int64.self, forKey: .value) { value = .int(i) }
        else if let d = try? c.decode(Double.self, forKey: .value) { value = .double(d) }
        else { value = .string(try c.decode(String.self, forKey: .value)) }
    }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(origin, forKey: .origin); try c.encode(seq, forKey: .seq); try c.encode(hlc, forKey: .hlc)
        try c.encode(entity, forKey: .entity); try c.encode(key, forKey: .key); try c.encode(field, forKey: .field)
        switch value {
        case .null: try c.encodeNil(forKey: .value)
        case .bool(let b): try c.encode(b, forKey: .value)
        case .int(let i): try c.encode(i, forKey: .value)
        case .double(let d): try c.encode(d, forKey: .value)
        case .string(let t): try c.encode(t, forKey: .value)
        }
    }
}

func measure(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

do {
    let mix = Mix()
    let replica = try makeReplica(mix: mix, seed: 1)

    // Bundle size: everything the replica holds, as a bundle and as gzip'd JSON Lines of the same changes.
    let (bundle, summary) = try replica.exportBundleData(for: Knowledge(), account: "alice")
    let log = try replica.changeLog(limit: Int.max)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    var jsonl = Data()
    for entry in log {
        jsonl.append(try encoder.encode(PlainChange(entry.change)))
        jsonl.append(0x0A)
    }
    let gz = try gzipSize(jsonl)
    let n = Double(summary.header.changeCount)
    let articleBytes = log.filter { $0.change.entity == .article }.reduce(0) { $0 + ($1.change.value.stringValue?.utf8.count ?? 0) }
    print("bundle-size: \(summary.header.changeCount) changes (\(log.filter { $0.change.entity == .article }.count) article versions, \(articleBytes) bytes of article text)")
    print(String(format: "  bundle:         %8d bytes  %7.2f bytes/change", bundle.count, Double(bundle.count) / n))
    print(String(format: "  gzip JSONL:     %8d bytes  %7.2f bytes/change", gz, Double(gz) / n))
    print(String(format: "  ratio bundle/gzip-JSONL: %.3f", Double(bundle.count) / Double(gz)))

    // Same comparison without article bodies (user actions only), which dominate day-to-day syncs.
    let userOnly = log.filter { $0.change.entity != .article }
    var userJSONL = Data()
    for entry in userOnly { userJSONL.append(try encoder.encode(PlainChange(entry.change))); userJSONL.append(0x0A) }
    let userGz = try gzipSize(userJSONL)
    let since = Knowledge(entries: [Knowledge.Key(origin: replica.replicaID, account: "alice", scope: .shared): Knowledge.Entry(seq: UInt64(mix.articles))])
    // Private scope from 0, shared after the articles: user actions only.
    let (userBundle, userSummary) = try replica.exportBundleData(for: since, account: "alice")
    let m = Double(userSummary.header.changeCount)
    print("bundle-size (user actions only): \(userSummary.header.changeCount) changes")
    print(String(format: "  bundle:         %8d bytes  %7.2f bytes/change", userBundle.count, Double(userBundle.count) / m))
    print(String(format: "  gzip JSONL:     %8d bytes  %7.2f bytes/change", userGz, Double(userGz) / Double(userOnly.count)))
    print(String(format: "  ratio bundle/gzip-JSONL: %.3f", (Double(userBundle.count) / m) / (Double(userGz) / Double(userOnly.count))))

    // Apply throughput vs. a baseline in the same run: decoding JSON Lines of the same changes.
    var applySeconds = Double.infinity
    var decodeSeconds = Double.infinity
    for _ in 0..<3 {
        let target = try Replica.inMemory(account: "alice")
        applySeconds = min(applySeconds, try measure { try target.applyBundle(data: bundle) })
        decodeSeconds = min(decodeSeconds, try measure {
            let decoder = JSONDecoder()
            for line in jsonl.split(separator: 0x0A) { _ = try decoder.decode(PlainChange.self, from: line) }
        })
    }
    print(String(format: "apply: %.0f changes/s merged into a fresh replica; baseline JSON Lines decode %.0f changes/s; ratio %.2f",
                 n / applySeconds, n / decodeSeconds, decodeSeconds / applySeconds))

    // Memory: large bundles (many comments, which are never compacted) applied from a file, each in a fresh
    // process; two sizes, to show that peak memory does not grow with the bundle.
    let big = try Replica.inMemory(account: "alice")
    try big.upsertArticles((0..<100).map { Article(id: "m\($0)", source: "S", title: "T", body: "B") })
    var written = 0
    let baselinePeak = try childPeak("--child-baseline", "/dev/null")
    print(String(format: "memory: a process that only opens a replica peaks at %.1f MiB (baseline)", Double(baselinePeak) / 1048576))
    for target in [30_000, 120_000] {
        while written < target {
            try big.addComment(to: "m\(written % 100)", body: "Comment \(written): a sentence of ordinary length, more or less.")
            written += 1
        }
        let bundleURL = FileManager.default.temporaryDirectory.appendingPathComponent("rs-bench-\(UUID().uuidString).bundle")
        defer { try? FileManager.default.removeItem(at: bundleURL) }
        let exported = try big.exportBundle(to: bundleURL, for: Knowledge(), account: "alice")
        let applyPeak = try childPeak("--child-apply", bundleURL.path)
        let uncompressed = Int(exported.header.uncompressedLength)
        print(String(format: "  applying %6d changes (%.1f MiB uncompressed) from a file: peak %.1f MiB, %.1f MiB over the baseline (%.2f x the payload)",
                     exported.header.changeCount, Double(uncompressed) / 1048576, Double(applyPeak) / 1048576,
                     Double(applyPeak - baselinePeak) / 1048576, Double(applyPeak - baselinePeak) / Double(uncompressed)))
    }
} catch {
    FileHandle.standardError.write(Data("readersync-bench: error: \(error)\n".utf8))
    exit(1)
}
