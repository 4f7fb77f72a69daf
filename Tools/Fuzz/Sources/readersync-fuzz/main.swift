// A mutation fuzzer for bundles (`Schemas/bundle-format.md`). It builds valid format-2 bundles from random replicas
// (read state, comments, articles, two accounts, acknowledgements), takes the committed format-1 bundle too, mutates
// them and feeds every mutant to a replica. Each mutant must either apply or be refused with a ReaderSyncError —
// never crash — and a refused mutant must leave the replica's canonical dump unchanged.
//
// Three kinds of mutants, in turn:
//   raw     bit flips, byte overwrites, truncations, insertions, reversed runs, length fields set to all ones
//           anywhere in the file: nearly all stop at a CRC-32;
//   header  the same mutations inside the header's fields (after the frozen prefix, before the CRC), with the
//           header CRC recomputed: the header's own checks decide;
//   payload the same mutations inside the compressed payload, with the payload CRC (and so the header CRC)
//           recomputed: the inflater, the column decoder and the change checks decide.
// (Mutations of the *inflated* payload, recompressed, are Tools/scripts/fuzz-bundles.sh's "deep" mode.)
//
// Usage: readersync-fuzz [iterations] [seed] [format-1 bundle]   (Tools/scripts/fuzz.sh builds it in release mode)
import Foundation
import ReaderSync

struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

let arguments = CommandLine.arguments
let iterations = arguments.count > 1 ? Int(arguments[1]) ?? 20_000 : 20_000
let seed = arguments.count > 2 ? UInt64(arguments[2]) ?? 1 : 1
let v1Path = arguments.count > 3 ? arguments[3] : "Tests/ReaderSyncTests/Fixtures/v1/tobob-v1.bundle"
var rng = SplitMix(state: seed)

// MARK: - CRC-32 (ISO-HDLC, as zlib): the fuzzer repairs checksums without the library's internals.

let crcTable: [UInt32] = (0..<256).map { n in
    var c = UInt32(n)
    for _ in 0..<8 { c = c & 1 == 1 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
    return c
}

func crc32(_ bytes: ArraySlice<UInt8>) -> UInt32 {
    var c: UInt32 = 0xFFFF_FFFF
    for b in bytes { c = crcTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
    return c ^ 0xFFFF_FFFF
}

func readU32(_ b: [UInt8], _ at: Int) -> Int {
    Int(b[at]) | Int(b[at + 1]) << 8 | Int(b[at + 2]) << 16 | Int(b[at + 3]) << 24
}

func writeU32(_ b: inout [UInt8], _ at: Int, _ v: UInt32) {
    for i in 0..<4 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) }
}

/// The header length, and the offsets of payloadLength and payloadCRC, of a well-formed bundle.
func layout(_ b: [UInt8]) -> (headerLength: Int, payloadLengthAt: Int, payloadCRCAt: Int)? {
    guard b.count >= 18 else { return nil }
    let version = Int(b[8]) | Int(b[9]) << 8
    let length = readU32(b, 10)
    guard length >= 18, length <= b.count else { return nil }
    switch version {
    case 1: return (length, 40, 56)
    case 2: return (length, 50, 66)
    default: return nil
    }
}

/// Recomputes payloadLength, the payload CRC and the header CRC.
func repair(_ bytes: [UInt8]) -> [UInt8] {
    var b = bytes
    guard let l = layout(b), l.headerLength >= l.payloadCRCAt + 4 else { return b }
    let payloadLength = UInt64(b.count - l.headerLength)
    for i in 0..<8 { b[l.payloadLengthAt + i] = UInt8(truncatingIfNeeded: payloadLength >> (8 * UInt64(i))) }
    writeU32(&b, l.payloadCRCAt, crc32(b[l.headerLength...]))
    writeU32(&b, l.headerLength - 4, crc32(b[0..<(l.headerLength - 4)]))
    return b
}

// MARK: - Corpus

/// Comment ids c1, c2, … so that a seed gives the same corpus every time.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func next() -> Int { lock.lock(); defer { lock.unlock() }; value += 1; return value }
}

func corpus() throws -> [(name: String, data: Data)] {
    let clock = ManualWallClock(millis: 1_751_500_000_000)
    let counter = Counter()
    let options = ReplicaOptions(wallClock: clock, makeID: { "c\(counter.next())" })
    let phone = try Replica.inMemory(account: "alice", options: options)
    let laptop = try Replica.inMemory(account: "alice", options: options)
    let tablet = try Replica.inMemory(account: "bob", options: options)
    _ = try phone.upsertArticles((0..<6).map {
        Article(id: "a\($0)", source: "S", title: "T\($0)", body: String(repeating: "body \($0) ", count: 40), topics: ["x"])
    })
    var bundles: [(String, Data)] = [("articles", try phone.exportBundleData(for: Knowledge(), account: "alice").data)]
    var comments: [(id: String, author: Replica)] = []
    for i in 0..<60 {
        clock.advance(by: Int64(7 + i % 13))
        let device = [phone, laptop, phone, tablet][i % 4]
        if device !== phone { _ = try device.sync(with: phone) }
        let article = "a\(i % 6)"
        switch i % 7 {
        case 0: try device.markRead(article)
        case 1: try device.setProgress(article, Double(i % 10) / 10)
        case 2: comments.append((try device.addComment(to: article, body: "comment \(i) ✓").id, device))
        case 3: try device.save(article)
        case 4: try device.markUnread(article)
        case 5: if let c = comments.last(where: { $0.author === device }) { try device.editComment(c.id, body: "edited \(i)") }
        default: try device.setProgress(article, 0.25 + Double(i % 3) / 4)
        }
    }
    _ = try laptop.sync(with: phone)
    let theirs = try laptop.knowledge()
    bundles.append(("everything", try phone.exportBundleData(for: Knowledge(), account: "alice").data))
    bundles.append(("shared", try phone.exportBundleData(for: Knowledge(), account: nil).data))
    bundles.append(("to laptop", try phone.exportBundleData(for: theirs, account: "alice", receiver: laptop.replicaID).data))
    bundles.append(("to tablet", try tablet.exportBundleData(for: Knowledge(), account: "bob").data))
    if let v1 = FileManager.default.contents(atPath: v1Path) {
        bundles.append(("format 1", v1))
    } else {
        FileHandle.standardError.write(Data("readersync-fuzz: no format-1 bundle at \(v1Path); fuzzing format 2 only\n".utf8))
    }
    return bundles
}

// MARK: - Mutation

func mutate(_ input: [UInt8], in range: Range<Int>, _ rng: inout SplitMix) -> [UInt8] {
    var bytes = input
    var end = range.upperBound
    for _ in 0..<Int.random(in: 1...4, using: &rng) {
        let start = range.lowerBound
        guard end > start else { break }
        switch Int.random(in: 0..<6, using: &rng) {
        case 0:
            let i = Int.random(in: start..<end, using: &rng)
            bytes[i] ^= UInt8(1) << UInt8.random(in: 0...7, using: &rng)
        case 1:
            let i = Int.random(in: start..<end, using: &rng)
            bytes[i] = [0x00, 0xFF, 0x7F, 0x80, 0x01, 0x02, 0x07][Int.random(in: 0..<7, using: &rng)]
        case 2:
            // Truncate (raw), or cut a run out of the range.
            let i = Int.random(in: start..<end, using: &rng)
            let n = Int.random(in: 1...min(16, end - i), using: &rng)
            if range.upperBound == input.count && Bool.random(using: &rng) {
                bytes.removeSubrange(i...)
                end = bytes.count
            } else {
                bytes.removeSubrange(i..<(i + n))
                end -= n
            }
        case 3:
            let i = Int.random(in: start...end, using: &rng)
            let inserted = (0..<Int.random(in: 1...16, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            bytes.insert(contentsOf: inserted, at: i)
            end += inserted.count
        case 4:
            // A likely length or count field: all ones, or 2^63.
            let i = Int.random(in: start..<end, using: &rng)
            let pattern: [UInt8] = Bool.random(using: &rng) ? [UInt8](repeating: 0xFF, count: 8) : [0, 0, 0, 0, 0, 0, 0, 0x80]
            for (k, j) in (i..<min(end, i + 8)).enumerated() { bytes[j] = pattern[k] }
        default:
            let i = Int.random(in: start..<end, using: &rng)
            let j = Int.random(in: i..<end, using: &rng)
            bytes.replaceSubrange(i..<j, with: bytes[i..<j].reversed())
        }
    }
    return bytes
}

enum Mode: String, CaseIterable { case raw, header, payload }

func mutant(of base: [UInt8], mode: Mode, _ rng: inout SplitMix) -> [UInt8] {
    guard let l = layout(base) else { return mutate(base, in: 0..<base.count, &rng) }
    switch mode {
    case .raw:
        return mutate(base, in: 0..<base.count, &rng)
    case .header:
        // Fields after the frozen prefix; the header length is kept in step, then both CRCs are recomputed.
        var b = mutate(base, in: 14..<(l.headerLength - 4), &rng)
        let newLength = l.headerLength + (b.count - base.count)
        guard newLength >= 18, newLength <= b.count else { return b }
        writeU32(&b, 10, UInt32(newLength))
        writeU32(&b, newLength - 4, crc32(b[0..<(newLength - 4)]))
        return Bool.random(using: &rng) ? b : repair(b)
    case .payload:
        return repair(mutate(base, in: l.headerLength..<base.count, &rng))
    }
}

// MARK: - Run

do {
    let bundles = try corpus()
    let target = try Replica.inMemory(account: "alice")
    try target.applyBundle(data: bundles[0].data)
    var applied: [Mode: Int] = [:]
    var refused: [Mode: Int] = [:]
    var messages: [String: Int] = [:]
    let start = Date()
    for i in 0..<iterations {
        let (name, base) = bundles[Int.random(in: 0..<bundles.count, using: &rng)]
        let mode = Mode.allCases[i % Mode.allCases.count]
        let data = Data(mutant(of: [UInt8](base), mode: mode, &rng))
        let before = try target.canonicalDump()
        do {
            try target.applyBundle(data: data)
            applied[mode, default: 0] += 1
        } catch let error as ReaderSyncError {
            refused[mode, default: 0] += 1
            // Group messages by their first words, for the summary.
            let head = error.message.split(separator: " ").prefix(4).joined(separator: " ")
            messages[head, default: 0] += 1
            if try target.canonicalDump() != before {
                let path = FileManager.default.temporaryDirectory.appendingPathComponent("readersync-fuzz-\(seed)-\(i).bundle")
                try? data.write(to: path)
                FileHandle.standardError.write(Data(
                    "readersync-fuzz: iteration \(i) (seed \(seed), \(mode) mutant of \(name)): a refused bundle changed the replica (\(error)); kept \(path.path)\n".utf8))
                exit(1)
            }
        }
    }
    let seconds = String(format: "%.1f", Date().timeIntervalSince(start))
    print("readersync-fuzz: \(iterations) mutants of \(bundles.count) bundles (seed \(seed)) in \(seconds) s, 0 crashes, every refusal left the replica unchanged")
    for mode in Mode.allCases {
        print("  \(mode.rawValue): \(refused[mode] ?? 0) refused, \(applied[mode] ?? 0) applied")
    }
    print("  most frequent refusals:")
    for (head, count) in messages.sorted(by: { $0.value > $1.value }).prefix(12) {
        print("    \(count)  \(head)…")
    }
} catch {
    FileHandle.standardError.write(Data("readersync-fuzz: error: \(error)\n".utf8))
    exit(1)
}
