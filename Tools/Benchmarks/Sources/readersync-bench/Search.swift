// 6. Search: `Replica.search` latency (p50, p99) over a few hundred queries of mixed kinds on a device replica
// of 100k articles (10k quick), against the same FTS5 MATCH with the same bm25 weights and no joins, and against
// a LIKE scan of titles; the index's share of the replica; and the cost of keeping it while applying a bundle.
//
// Figures 6 and 7 share one corpus (`BodiesCorpus`): an editor's replica, and a reader's device replica that
// received every article from it (so that the device may evict bodies: it did not write them).
import Foundation
import GRDB
import ReaderSync

// MARK: - The shared corpus

/// An editor's replica with `count` seeded articles (2-4 KB bodies), and a reader's device replica that applied
/// the editor's bundle, then synced with it. One clock for both, set after the last article's publication, so
/// that "unread for 7 days" means the same on every run.
final class BodiesCorpus: Sendable {
    let count: Int
    let dir: TempDir
    let clock: ManualWallClock
    let source: Replica
    let device: Replica
    let devicePath: String
    let publishSeconds: Double
    let bundleBytes: Int
    /// Applying the editor's bundle into a fresh device replica, and into one whose index triggers were dropped.
    let applySeconds: Double
    let applyWithoutIndexSeconds: Double
    /// One article every 5 minutes at 100k (about 347 days); smaller corpora span the same days, so that the
    /// unread articles the budget keeps (the last 7 days) are the same share of the corpus in quick mode.
    let spacingMillis: Int64
    static let bodyBytes = 2_048...4_096

    /// Quick mode runs on CI's debug build, where every mutation re-checks the whole change log (marking 1,400 of
    /// 2k articles read took a minute there): 1k articles keep figures 6 and 7 to about half a minute.
    static func size(_ options: Options) -> Int { options.quick ? 1_000 : 100_000 }

    init(_ options: Options) throws {
        count = Self.size(options)
        spacingMillis = 300_000 * 100_000 / Int64(count)
        dir = try TempDir("bodies")
        clock = ManualWallClock(millis: Articles.published(count, spacingMillis: spacingMillis) + 3_600_000)
        let replicaOptions = ReplicaOptions(wallClock: clock)
        source = try Replica.create(at: dir.path("editor.db"), account: "editor", options: replicaOptions)
        let source = source
        let count = count
        let spacing = spacingMillis
        publishSeconds = try measure {
            var articles: [Article] = []
            for index in 0..<count {
                articles.append(Articles.make(index, seed: options.seed, bodyBytes: Self.bodyBytes, spacingMillis: spacing))
                if articles.count == 1_000 { try source.upsertArticles(articles); articles = [] }
            }
            if !articles.isEmpty { try source.upsertArticles(articles) }
        }
        say("bodies corpus: \(count) articles published into the editor's replica in " + String(format: "%.1f s", publishSeconds))

        let bundle = dir.url.appendingPathComponent("articles.bundle")
        let summary = try source.exportBundle(to: bundle, for: Knowledge(), account: "reader")
        bundleBytes = summary.bytes

        // Without the index: a fresh device replica whose three index triggers are dropped before it applies.
        let plainPath = dir.path("reader-without-index.db")
        do { _ = try Replica.create(at: plainPath, account: "reader", options: replicaOptions) }
        let queue = try DatabaseQueue(path: plainPath)
        try queue.write { db in
            for name in ["article_indexed_insert", "article_indexed_update", "article_indexed_delete"] {
                try db.execute(sql: "DROP TRIGGER \(name)")
            }
        }
        try queue.close()
        let plain = try Replica.open(at: plainPath, options: replicaOptions)
        var plainApplied = 0
        applyWithoutIndexSeconds = try measure { plainApplied = try plain.applyBundle(at: bundle).applied }

        devicePath = dir.path("reader.db")
        device = try Replica.create(at: devicePath, account: "reader", options: replicaOptions)
        let device = device
        var applied = 0
        applySeconds = try measure { applied = try device.applyBundle(at: bundle).applied }
        if applied != count || plainApplied != count {
            say("note: the device applied \(applied) and the replica without index \(plainApplied) of \(count) articles")
        }
        // The sync the brief's flow names: nothing new moves, but both sides learn what the other holds.
        _ = try device.sync(with: source)
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: plainPath + suffix) }
        try? FileManager.default.removeItem(at: bundle)
        say("bodies corpus: bundle " + String(format: "%.1f MiB", mib(summary.bytes)) + ", applied in "
            + String(format: "%.1f s (%.1f s without the index triggers)", applySeconds, applyWithoutIndexSeconds))
    }

    var label: String { "\(count / 1_000)k" }

    func cleanUp() {
        if ProcessInfo.processInfo.environment["READERSYNC_BENCH_KEEP"] != nil { say("kept \(dir.url.path)"); return }
        dir.cleanUp()
    }
}

/// Builds the corpus on first use, so that `--only budget` works without `search`.
final class BodiesCorpusCache {
    private var corpus: BodiesCorpus?
    func get(_ options: Options) throws -> BodiesCorpus {
        if let corpus { return corpus }
        let made = try BodiesCorpus(options)
        corpus = made
        return made
    }
    func cleanUp() { corpus?.cleanUp(); corpus = nil }
}

// MARK: - Queries

struct BenchQuery {
    var kind: String
    /// In the replica's syntax.
    var text: String
    /// The FTS5 expression `Replica.search` runs for it (every term quoted).
    var fts: String
    /// A condition on `title` with its LIKE patterns: the scan an app without an index would run.
    var like: String
    var likeArguments: [String]
}

/// Seeded queries of six kinds, `perKind` of each, shuffled. The generator's vocabulary is Zipf-like (3,000
/// words, 39 function words first): "rare" words come from its tail (each in about 5% of articles, the rarest the
/// generator makes), "mid" words from ranks 300-1000, "common" ones from ranks 39-100 (in most articles); phrases
/// are two adjacent words of a generated body; prefixes are the first 4 letters of a word of 6 letters or more.
func searchQueries(count articles: Int, spacingMillis: Int64, seed: UInt64, perKind: Int) -> [BenchQuery] {
    var rng = SeededRNG(seed: seed, stream: 0x5EA2C4)
    let vocabulary = Text.vocabulary
    func pick(_ range: Range<Int>) -> String { vocabulary[rng.int(range)] }
    func quoted(_ word: String) -> String { "\"" + word + "\"" }
    func single(_ kind: String, _ word: String) -> BenchQuery {
        BenchQuery(kind: kind, text: word, fts: quoted(word), like: "title LIKE ?", likeArguments: ["%\(word)%"])
    }
    var queries: [BenchQuery] = []
    for _ in 0..<perKind {
        queries.append(single("rare word", pick(2_500..<vocabulary.count)))
        queries.append(single("mid word", pick(300..<1_000)))
        queries.append(single("common word", pick(39..<100)))

        let article = Articles.make(rng.int(0..<articles), seed: seed, bodyBytes: BodiesCorpus.bodyBytes,
                                    spacingMillis: spacingMillis)
        let words = article.body.lowercased().split { !$0.isLetter }.map(String.init)
        let at = rng.int(0..<(words.count - 1))
        let phrase = "\(words[at]) \(words[at + 1])"
        queries.append(BenchQuery(kind: "phrase", text: "\"\(phrase)\"", fts: quoted(phrase), like: "title LIKE ?",
                                  likeArguments: ["%\(phrase)%"]))

        var long = pick(39..<vocabulary.count)
        while long.count < 6 { long = pick(39..<vocabulary.count) }
        let prefix = String(long.prefix(4))
        queries.append(BenchQuery(kind: "prefix", text: prefix + "*", fts: quoted(prefix) + " *", like: "title LIKE ?",
                                  likeArguments: ["%\(prefix)%"]))

        let a = pick(300..<1_000), b = pick(300..<1_000)
        queries.append(BenchQuery(kind: "OR", text: "\(a) OR \(b)", fts: "(\(quoted(a)) OR \(quoted(b)))",
                                  like: "(title LIKE ? OR title LIKE ?)", likeArguments: ["%\(a)%", "%\(b)%"]))
    }
    queries.shuffle(using: &rng)
    return queries
}

/// The nearest-rank percentile `p` (0...1) of `values`.
func percentile(_ values: [Double], _ p: Double) -> Double {
    guard !values.isEmpty else { return .nan }
    let sorted = values.sorted()
    return sorted[max(0, min(sorted.count - 1, Int((p * Double(sorted.count)).rounded(.up)) - 1))]
}

// MARK: - The benchmark

func benchSearch(_ options: Options, _ corpus: BodiesCorpus) throws -> [Figure] {
    let device = corpus.device
    let label = corpus.label
    let perKind = options.quick ? 25 : 50
    let queries = searchQueries(count: corpus.count, spacingMillis: corpus.spacingMillis, seed: options.seed, perKind: perKind)

    // The baselines read the same file through a connection of their own.
    var configuration = Configuration()
    configuration.readonly = true
    let plain = try DatabaseQueue(path: corpus.devicePath, configuration: configuration)
    defer { try? plain.close() }
    let w = (title: 10.0, byline: 3.0, source: 3.0, body: 1.0)  // Replica.searchWeights
    func rawMatch(_ query: BenchQuery) throws -> Int {
        try plain.read { db in
            try Int64.fetchAll(db.cachedStatement(sql: """
                SELECT rowid FROM article_search WHERE article_search MATCH ?
                ORDER BY bm25(article_search, \(w.title), \(w.byline), \(w.source), \(w.body)) LIMIT 20
                """), arguments: [query.fts]).count
        }
    }
    func likeScan(_ query: BenchQuery) throws -> Int {
        try plain.read { db in
            try Row.fetchAll(db.cachedStatement(sql: """
                SELECT id, key, title FROM article WHERE \(query.like) AND content_hlc IS NOT NULL LIMIT 20
                """), arguments: StatementArguments(query.likeArguments)).count
        }
    }
    func matches(_ query: BenchQuery) throws -> Int {
        try plain.read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM article_search WHERE article_search MATCH ?", arguments: [query.fts]) ?? 0
        }
    }

    // Warm the cache, and check both sides find as many hits.
    var matchCounts: [String: [Double]] = [:]
    for query in queries {
        let hits = try device.search(query.text)
        let raw = try rawMatch(query)
        _ = try likeScan(query)
        if hits.count != raw { say("note: search '\(query.text)' found \(hits.count) hits, the raw MATCH \(raw)") }
        matchCounts[query.kind, default: []].append(Double(try matches(query)))
    }

    var replicaTimes: [Double] = [], rawTimes: [Double] = [], likeTimes: [Double] = []
    var byKind: [String: [Double]] = [:]
    for query in queries {
        let t = try measure { _ = try device.search(query.text) }
        replicaTimes.append(t)
        byKind[query.kind, default: []].append(t)
        rawTimes.append(try measure { _ = try rawMatch(query) })
        likeTimes.append(try measure { _ = try likeScan(query) })
    }
    let ms = { (values: [Double], p: Double) in percentile(values, p) * 1000 }
    let (p50, p99) = (ms(replicaTimes, 0.5), ms(replicaTimes, 0.99))
    let (raw50, raw99) = (ms(rawTimes, 0.5), ms(rawTimes, 0.99))
    let (like50, like99) = (ms(likeTimes, 0.5), ms(likeTimes, 0.99))
    let kinds = ["rare word", "mid word", "common word", "phrase", "prefix", "OR"]
    let perKindNote = kinds.map { kind in
        let share = percentile(matchCounts[kind] ?? [], 0.5) / Double(corpus.count) * 100
        return String(format: "%@ p50 %.2f ms / p99 %.2f ms (median %.1f%% of articles match)", kind,
                      ms(byKind[kind] ?? [], 0.5), ms(byKind[kind] ?? [], 0.99), share)
    }.joined(separator: "; ")
    say("search \(label): " + String(format: "p50 %.2f ms, p99 %.2f ms; raw MATCH p50 %.2f, p99 %.2f; LIKE p50 %.2f, p99 %.2f",
                                     p50, p99, raw50, raw99, like50, like99))
    say("search \(label): \(perKindNote)")

    let storage = try device.storageBytes()
    let index = try device.searchIndexBytes()
    let share = Double(index) / Double(storage)
    say("search \(label): " + String(format: "index %.1f MiB of %.1f MiB in use (%.1f%%)", mib(Int(index)), mib(Int(storage)), share * 100))

    let queryMix = "\(queries.count) queries, \(perKind) of each kind (rare word, mid word, common word, two-word phrase, "
        + "4-letter prefix*, a OR b), seeded, limit 20 (the default), after one warm-up pass; interleaved with the baselines"
    let corpusNote = "device replica of \(corpus.count) articles (2-4 KB bodies of the seeded syllable vocabulary) applied from an editor's bundle"
    return [
        Figure(id: "search-p50-\(label)", name: "6 search \(label): p50 latency",
               value: p50, unit: "ms", baseline: raw50, baselineUnit: "ms",
               baselineDescription: "the same FTS5 MATCH expression with the same bm25 weights, ORDER BY rank LIMIT 20, rowids only (no joins, snippet or read state), own read transaction on a second connection to the same file",
               ratio: p50 / raw50, ratioNote: "Replica.search p50 / raw MATCH p50",
               target: nil, meetsTarget: nil, notes: "\(corpusNote); \(queryMix); \(perKindNote)"),
        Figure(id: "search-p99-\(label)", name: "6 search \(label): p99 latency",
               value: p99, unit: "ms", baseline: raw99, baselineUnit: "ms",
               baselineDescription: "the raw MATCH as above, p99",
               ratio: p99 / raw99, ratioNote: "Replica.search p99 / raw MATCH p99",
               target: nil, meetsTarget: nil, notes: nil),
        Figure(id: "search-like-\(label)", name: "6 search \(label): p50 vs LIKE title scan",
               value: p50, unit: "ms", baseline: like50, baselineUnit: "ms",
               baselineDescription: "SELECT id, key, title FROM article WHERE title LIKE '%term%' (each term of the query; OR for OR) LIMIT 20 on the same file: unranked, titles only, stops at 20 hits",
               ratio: p50 / like50, ratioNote: "Replica.search p50 / LIKE p50",
               target: nil, meetsTarget: nil,
               notes: String(format: "LIKE p99 %.2f ms (Replica.search p99 %.2f ms); LIKE matches substrings of titles only, so it is no substitute, only the price of not having an index", like99, p99)),
        Figure(id: "search-index-share-\(label)", name: "6 search \(label): index size",
               value: mib(Int(index)), unit: "MiB", baseline: mib(Int(storage)), baselineUnit: "MiB",
               baselineDescription: "the whole replica: Replica.storageBytes() (pages in use)",
               ratio: share, ratioNote: "searchIndexBytes() / storageBytes()",
               target: nil, meetsTarget: nil,
               notes: "searchIndexBytes() sums the FTS5 segment blocks and document sizes, not their pages"),
        Figure(id: "search-apply-overhead-\(label)", name: "6 search \(label): applying the articles with the index",
               value: corpus.applySeconds, unit: "s", baseline: corpus.applyWithoutIndexSeconds, baselineUnit: "s",
               baselineDescription: "the same bundle (\(String(format: "%.1f", mib(corpus.bundleBytes))) MiB, \(corpus.count) articles) applied into a fresh device replica whose three index triggers were dropped",
               ratio: corpus.applySeconds / corpus.applyWithoutIndexSeconds, ratioNote: "apply time with the index / without",
               target: nil, meetsTarget: nil,
               notes: "one apply each (the one without the index first), so noisier than the latencies"),
    ]
}
