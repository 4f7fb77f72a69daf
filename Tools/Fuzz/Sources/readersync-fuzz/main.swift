// A mutation fuzzer for bundles: it builds valid bundles from random replicas, mutates them (bit flips, byte
// replacements, truncation, splices, length-field inflation) and feeds every mutant to a replica. Each mutant must
// either apply or be refused with a ReaderSyncError — never crash — and a refused mutant must leave the replica's
// canonical dump unchanged.
//
// Usage: readersync-fuzz [iterations] [seed]   (Tools/scripts/fuzz.sh builds it in release mode and runs it)
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
var rng = SplitMix(state: seed)

func corpus() throws -> [Data] {
    let clock = ManualWallClock(millis: 1_751_500_000_000)
    let source = try Replica.inMemory(account: "alice", options: ReplicaOptions(wallClock: clock))
    try source.upsertArticles((0..<5).map {
        Article(id: "a\($0)", source: "S", title: "T\($0)", body: String(repeating: "body ", count: 40), topics: ["x"])
    })
    var bundles: [Data] = [try source.exportBundleData(for: Knowledge(), account: "alice").data]
    for i in 0..<40 {
        clock.advance(by: 7)
        switch i % 5 {
        case 0: try source.markRead("a\(i % 5)")
        case 1: try source.setProgress("a\(i % 5)", Double(i % 10) / 10)
        case 2: try source.addComment(to: "a\(i % 5)", body: "comment \(i) ✓")
        case 3: try source.save("a\(i % 5)")
        default: try source.markUnread("a\(i % 5)")
        }
    }
    bundles.append(try source.exportBundleData(for: Knowledge(), account: "alice").data)
    bundles.append(try source.exportBundleData(for: Knowledge(), account: nil).data)
    return bundles
}

func mutate(_ input: Data, _ rng: inout SplitMix) -> Data {
    var bytes = [UInt8](input)
    let rounds = Int.random(in: 1...4, using: &rng)
    for _ in 0..<rounds {
        guard !bytes.isEmpty else { break }
        switch Int.random(in: 0..<6, using: &rng) {
        case 0:
            let i = Int.random(in: 0..<bytes.count, using: &rng)
            bytes[i] ^= UInt8(1) << UInt8.random(in: 0...7, using: &rng)
        case 1:
            let i = Int.random(in: 0..<bytes.count, using: &rng)
            bytes[i] = [0x00, 0xFF, 0x7F, 0x80, 0x01][Int.random(in: 0..<5, using: &rng)]
        case 2:
            bytes.removeLast(Int.random(in: 1...bytes.count, using: &rng))
        case 3:
            let i = Int.random(in: 0..<bytes.count, using: &rng)
            bytes.insert(contentsOf: (0..<Int.random(in: 1...16, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }, at: i)
        case 4:
            // Inflate a likely length field in the header.
            let i = Int.random(in: 0..<min(bytes.count, 96), using: &rng)
            for j in i..<min(bytes.count, i + 8) { bytes[j] = 0xFF }
        default:
            let i = Int.random(in: 0..<bytes.count, using: &rng)
            let j = Int.random(in: i..<bytes.count, using: &rng)
            bytes.replaceSubrange(i..<j, with: bytes[i..<j].reversed())
        }
    }
    return Data(bytes)
}

do {
    let bundles = try corpus()
    let target = try Replica.inMemory(account: "alice")
    try target.applyBundle(data: bundles[0])
    var applied = 0, refused = 0
    let start = Date()
    for i in 0..<iterations {
        let base = bundles[Int.random(in: 0..<bundles.count, using: &rng)]
        let mutant = mutate(base, &rng)
        let before = try target.canonicalDump()
        do {
            try target.applyBundle(data: mutant)
            applied += 1
        } catch is ReaderSyncError {
            refused += 1
            let after = try target.canonicalDump()
            if after != before {
                FileHandle.standardError.write(Data("readersync-fuzz: iteration \(i) (seed \(seed)): a refused bundle changed the replica\n".utf8))
                exit(1)
            }
        }
    }
    print("readersync-fuzz: \(iterations) mutants (seed \(seed)) in \(String(format: "%.1f", Date().timeIntervalSince(start))) s: \(refused) refused cleanly, \(applied) applied (harmless mutations), 0 crashes")
} catch {
    FileHandle.standardError.write(Data("readersync-fuzz: error: \(error)\n".utf8))
    exit(1)
}
