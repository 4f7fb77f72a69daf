import Foundation
import GRDB
import Testing
@testable import ReaderSync

/// A temporary directory removed when the value goes away.
final class TempDir {
    let url: URL
    init() {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("readersync-tests-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    deinit { try? FileManager.default.removeItem(at: url) }
}

/// Deterministic ids for tests: prefix-1, prefix-2, ...
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func next() -> Int { lock.lock(); defer { lock.unlock() }; value += 1; return value }
}

func options(clock: ManualWallClock, idPrefix: String = "c") -> ReplicaOptions {
    let counter = Counter()
    return ReplicaOptions(wallClock: clock, makeID: { "\(idPrefix)-\(counter.next())" })
}

/// The captured page's four articles.
func fixtureArticles() throws -> [Article] {
    let url = try #require(Bundle.module.url(forResource: "news-page", withExtension: "json", subdirectory: "Fixtures"))
    return try ArticleImport.parse(contentsOf: url)
}

let mainArticle = "ap-putin-trump-call-iran-ukraine"
let stocksArticle = "u-s-stocks-extend-gains-to-conclude-first-half-of-2025"

func sampleArticle(_ id: String, updatedAt: Date? = nil, title: String = "Title") -> Article {
    Article(id: id, source: "Source", title: title, body: "Body of \(id)", topics: ["world"], updatedAt: updatedAt)
}

func dumpString(_ replica: Replica, account: String? = nil, bodies: DumpBodies = .text) throws -> String {
    String(decoding: try replica.canonicalDump(account: account, bodies: bodies), as: UTF8.self)
}

/// The digest the replica holds for an article's winning body, as hex.
func bodyDigest(_ replica: Replica, _ id: String) throws -> String? {
    try replica.database.read { db in
        try Data.fetchOne(db, sql: "SELECT body_sha256 FROM article WHERE key = ?", arguments: [id])
    }.map { SHA256.hexString(Array($0)) }
}

/// Syncs two replicas through in-memory bundles, both directions.
func sync(_ a: Replica, _ b: Replica) throws {
    _ = try a.sync(with: b)
}

/// A small deterministic random number generator (SplitMix64), so a failing seed can be replayed.
struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
