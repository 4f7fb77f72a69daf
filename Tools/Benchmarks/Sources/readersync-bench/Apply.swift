// 2. Apply: changes per second for one bundle of mixed changes applied into a fresh file replica (WAL), against
// GRDB prepared INSERTs of as many comparable rows (target text, field, integer hlc, value blob) in one
// transaction into a plain table of a file database.
import Foundation
import GRDB
import ReaderSync
import Synchronization

/// Seeded comment ids (the default is a random UUID): the same run gives the same bundle.
final class SeededIDs: Sendable {
    private let state: Mutex<SeededRNG>
    init(seed: UInt64) { state = Mutex(SeededRNG(seed: seed, stream: 0x1D5)) }
    func next() -> String {
        state.withLock { rng in
            let a = rng.next(), b = rng.next()
            let hex = String(a, radix: 16).leftPad(16) + String(b, radix: 16).leftPad(16)
            let c = Array(hex)
            return "\(String(c[0..<8]))-\(String(c[8..<12]))-\(String(c[12..<16]))-\(String(c[16..<20]))-\(String(c[20..<32]))"
        }
    }
}

extension String {
    func leftPad(_ width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}

/// A row of the baseline table: what a change carries, in plain columns.
struct PlainRow {
    var target: String
    var field: Int64
    var hlc: Int64
    var value: Data?

    static let fields = ["content", "created", "body", "deleted", "read", "progress", "saved"]

    init(_ change: Change) {
        target = change.key
        field = Int64(Self.fields.firstIndex(of: change.field) ?? 99)
        hlc = Int64(bitPattern: change.hlc.rawValue)
        switch change.value {
        case .null: value = nil
        case .bool(let b): value = Data([b ? 1 : 0])
        case .int(let i): value = withUnsafeBytes(of: i.littleEndian) { Data($0) }
        case .double(let d): value = withUnsafeBytes(of: d.bitPattern.littleEndian) { Data($0) }
        case .string(let s): value = Data(s.utf8)
        }
    }
}

struct ApplySource {
    var bundle: URL
    var changes: Int
    var bytes: Int
    var uncompressed: Int
    var rows: [PlainRow]
    var composition: String
    var buildSeconds: Double
}

/// Builds, through the public API on an in-memory replica of alice, a history whose bundle holds about `target`
/// changes once superseded ones are compacted away: article versions (10% corrected), read marks (some twice),
/// progress (rising), saves, comments (a quarter edited, 8% deleted), interleaved in clock order.
func buildApplySource(target: Int, seed: UInt64, dir: TempDir, wantRows: Bool = true) throws -> ApplySource {
    let started = DispatchTime.now().uptimeNanoseconds
    let clock = ManualWallClock(millis: Articles.epochMillis)
    let ids = SeededIDs(seed: seed &+ UInt64(target))
    let replica = try Replica.inMemory(account: "alice", replicaID: ReplicaID(UUID(uuid: uuidBytes(seed, 1))),
                                       options: ReplicaOptions(wallClock: clock, makeID: { ids.next() }))
    var rng = SeededRNG(seed: seed, stream: UInt64(target))
    var expected = 0
    var articleCount = 0
    var counts: [String: Int] = [:]
    let spacing: Int64 = 60_000
    enum Op { case read(String), progress(String, [Double]), save(String), comment(String), edit(String), delete(String) }
    while expected < target {
        let remaining = target - expected
        let chunk = max(20, min(500, remaining / 5))
        let first = articleCount
        var articles = (first..<(first + chunk)).map {
            Articles.make($0, seed: seed, bodyBytes: 500...1_500, spacingMillis: spacing)
        }
        // Corrections of a tenth of the previous chunk's articles (a later updatedAt wins, the old version goes).
        if first > 0 {
            for index in max(0, first - 500)..<first where rng.chance(0.1) {
                articles.append(Articles.make(index, seed: seed, bodyBytes: 500...1_500, spacingMillis: spacing, revision: 1))
                counts["article corrections", default: 0] += 1
            }
        }
        clock.set(max(clock.nowMillis(), Articles.published(first + chunk, spacingMillis: spacing)))
        try replica.upsertArticles(articles)
        articleCount += chunk
        expected += chunk
        counts["article versions", default: 0] += articles.count

        var phaseA: [Op] = []
        var phaseB: [Op] = []
        var comments: [String] = []
        for index in first..<(first + chunk) {
            let id = Articles.id(index, seed: seed, spacingMillis: spacing)
            if rng.chance(0.7) {
                phaseA.append(.read(id)); expected += 1
                if rng.chance(0.15) { phaseB.append(.read(id)) }
            }
            if rng.chance(0.6) {
                var p = 0.0
                var steps: [Double] = []
                for _ in 0..<rng.int(1...3) {
                    p = min(1, p + 0.05 + rng.unit() * 0.4)
                    steps.append((p * 100).rounded() / 100)
                }
                phaseA.append(.progress(id, steps))
                expected += 1
            }
            if rng.chance(0.3) { phaseA.append(.save(id)); expected += 1 }
            let n = rng.chance(0.4) ? 0 : rng.int(1...3)
            for _ in 0..<n { phaseA.append(.comment(id)); expected += 2 }
        }
        phaseA.shuffle(using: &rng)
        for op in phaseA {
            clock.advance(by: Int64(rng.int(1...2_000)))
            switch op {
            case .read(let id): try replica.markRead(id); counts["read marks", default: 0] += 1
            case .progress(let id, let steps):
                for p in steps {
                    try replica.setProgress(id, p); counts["progress", default: 0] += 1
                    clock.advance(by: Int64(rng.int(1...2_000)))
                }
            case .save(let id): try replica.save(id); counts["saves", default: 0] += 1
            case .comment(let id):
                let body = (0..<rng.int(1...3)).map { _ in Text.sentence(&rng) }.joined(separator: " ")
                comments.append(try replica.addComment(to: id, body: body).id)
                counts["comments created", default: 0] += 1
            default: break
            }
        }
        for comment in comments {
            if rng.chance(0.25) { phaseB.append(.edit(comment)) }
            if rng.chance(0.08) { phaseB.append(.delete(comment)) }
        }
        phaseB.shuffle(using: &rng)
        var deleted = Set<String>()
        for op in phaseB {
            clock.advance(by: Int64(rng.int(1...2_000)))
            switch op {
            case .read(let id): try replica.markRead(id); counts["read marks", default: 0] += 1
            case .edit(let comment) where !deleted.contains(comment):
                try replica.editComment(comment, body: "Edited: " + Text.sentence(&rng)); counts["comment edits", default: 0] += 1
            case .delete(let comment) where !deleted.contains(comment):
                try replica.deleteComment(comment); deleted.insert(comment); counts["comment deletes", default: 0] += 1
            default: break
            }
        }
    }
    let url = dir.url.appendingPathComponent("apply-\(target).bundle")
    let summary = try replica.exportBundle(to: url, for: Knowledge(), account: "alice")
    let rows = wantRows ? try replica.changeLog(limit: Int.max).map { PlainRow($0.change) } : []
    if wantRows && rows.count != Int(summary.header.changeCount) {
        say("note: change log holds \(rows.count) entries, the bundle \(summary.header.changeCount)")
    }
    if Int(summary.header.changeCount) != expected {
        say("note: expected \(expected) live changes, the bundle holds \(summary.header.changeCount)")
    }
    let composition = "\(articleCount) articles; operations: "
        + counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
    return ApplySource(bundle: url, changes: Int(summary.header.changeCount), bytes: summary.bytes,
                       uncompressed: Int(summary.header.uncompressedLength), rows: rows, composition: composition,
                       buildSeconds: Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
}

func uuidBytes(_ seed: UInt64, _ n: UInt64) -> uuid_t {
    var rng = SeededRNG(seed: seed, stream: 0x0E1D &+ n)
    let a = rng.next(), b = rng.next()
    var bytes = [UInt8](repeating: 0, count: 16)
    for i in 0..<8 { bytes[i] = UInt8(truncatingIfNeeded: a >> (8 * i)); bytes[8 + i] = UInt8(truncatingIfNeeded: b >> (8 * i)) }
    bytes[6] = (bytes[6] & 0x0F) | 0x40
    bytes[8] = (bytes[8] & 0x3F) | 0x80
    return (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
            bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15])
}

/// Applies the bundle file into a fresh file replica; seconds.
func applyIntoFreshReplica(_ bundle: URL, expecting changes: Int?) throws -> Double {
    let dir = try TempDir("apply-target")
    defer { dir.cleanUp() }
    let replica = try Replica.create(at: dir.path("target.db"), account: "alice")
    var applied: BundleApplyResult?
    let seconds = try measure { applied = try replica.applyBundle(at: bundle) }
    if let changes, let result = applied, result.applied != changes {
        say("note: applied \(result.applied) of \(changes) changes (duplicates \(result.duplicates), ignored \(result.ignored), refused \(result.refused.count))")
    }
    return seconds
}

/// The baseline: the rows inserted with one prepared statement in one transaction into a fresh file database.
func insertPlainRows(_ rows: [PlainRow]) throws -> Double {
    let dir = try TempDir("apply-baseline")
    defer { dir.cleanUp() }
    let pool = try DatabasePool(path: dir.path("plain.db"))
    try pool.write { db in
        try db.execute(sql: "CREATE TABLE change (target TEXT NOT NULL, field INTEGER NOT NULL, hlc INTEGER NOT NULL, value BLOB)")
    }
    return try measure {
        try pool.write { db in
            let insert = try db.makeStatement(sql: "INSERT INTO change (target, field, hlc, value) VALUES (?, ?, ?, ?)")
            for row in rows { try insert.execute(arguments: [row.target, row.field, row.hlc, row.value]) }
        }
    }
}

func benchApply(_ options: Options) throws -> [Figure] {
    var sizes = options.quick ? [2_000, 10_000] : [10_000, 100_000]
    if !options.quick && (options.huge || Options.hugeInFullMode) { sizes.append(1_000_000) }
    let headline = options.quick ? 10_000 : 100_000
    var figures: [Figure] = []
    var perChange: [(size: Int, replica: Double, baseline: Double)] = []
    for size in sizes {
        let dir = try TempDir("apply")
        defer { dir.cleanUp() }
        say("apply: building a history of about \(size) live changes")
        let source = try buildApplySource(target: size, seed: options.seed, dir: dir)
        say("apply: built \(source.changes) changes (\(source.composition)) in "
            + String(format: "%.1f s; bundle %.1f MiB, %.1f MiB uncompressed", source.buildSeconds, mib(source.bytes), mib(source.uncompressed)))
        let repeats = size <= 10_000 ? 3 : size <= 100_000 ? 2 : 1
        var best = Double.infinity
        var bestBaseline = Double.infinity
        for _ in 0..<repeats {
            best = min(best, try applyIntoFreshReplica(source.bundle, expecting: source.changes))
            bestBaseline = min(bestBaseline, try insertPlainRows(source.rows))
        }
        let rate = Double(source.changes) / best
        let baselineRate = Double(source.changes) / bestBaseline
        perChange.append((size, best / Double(source.changes), bestBaseline / Double(source.changes)))
        let ratio = best / bestBaseline
        let label = size >= 1_000_000 ? "\(size / 1_000_000)M" : "\(size / 1_000)k"
        figures.append(Figure(
            id: "apply-\(label)", name: "2 apply \(label) changes\(size == headline ? "" : " (growth)")",
            value: rate, unit: "changes/s", baseline: baselineRate, baselineUnit: "rows/s",
            baselineDescription: "GRDB prepared INSERT of \(source.rows.count) rows (target text, field int, hlc int, value blob) in one transaction into a plain table (no index) of a fresh file DB (WAL)",
            ratio: ratio, ratioNote: "replica time / baseline time",
            target: ">= 200k changes/s and ratio <= 2",
            meetsTarget: rate >= 200_000 && ratio <= 2,
            notes: "\(source.changes) changes (\(source.composition)), "
                + String(format: "bundle %.2f MiB (%.1f MiB uncompressed); best of %d; into a fresh file replica (WAL)",
                         mib(source.bytes), mib(source.uncompressed), repeats)))
        say("apply \(label): " + String(format: "%.0f changes/s (%.2f s) vs %.0f rows/s (%.2f s)", rate, best, baselineRate, bestBaseline))
    }
    if let first = perChange.first, let last = perChange.last, perChange.count > 1 {
        let growth = last.replica / first.replica
        let baselineGrowth = last.baseline / first.baseline
        figures.append(Figure(
            id: "apply-growth", name: "2 apply growth (time/change \(last.size / 1_000)k vs \(first.size / 1_000)k)",
            value: growth, unit: "x", baseline: baselineGrowth, baselineUnit: "x",
            baselineDescription: "the same growth of the GRDB INSERT baseline",
            ratio: growth / baselineGrowth, ratioNote: "replica growth / baseline growth",
            target: "<= 1.25 (linear)", meetsTarget: growth <= 1.25,
            notes: "time per change at the largest size over time per change at the smallest; 1.0 is linear"))
    }
    if !options.quick && !options.huge && !Options.hugeInFullMode {
        say("apply: the 1M-change bundle runs with --huge")
    }
    return figures
}
