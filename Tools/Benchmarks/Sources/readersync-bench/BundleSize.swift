// 3. Bundle size: bytes per change of a delta bundle, one bundle per kind (read state, comments, articles),
// against the same changes as JSON Lines compressed by `gzip -6`.
import Foundation
import ReaderSync

/// The baseline's JSON of a change: the fields a change has, values as plain JSON, nothing derived.
struct PlainChange: Encodable {
    var origin: String, account: String, seq: UInt64, hlc: UInt64, entity: String, key: String, field: String
    var value: ChangeValue

    init(_ c: Change) {
        origin = c.origin.description; account = c.account; seq = c.seq; hlc = c.hlc.rawValue
        entity = c.entity.description; key = c.key; field = c.field; value = c.value
    }

    enum CodingKeys: String, CodingKey { case origin, account, seq, hlc, entity, key, field, value }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(origin, forKey: .origin); try c.encode(account, forKey: .account); try c.encode(seq, forKey: .seq)
        try c.encode(hlc, forKey: .hlc); try c.encode(entity, forKey: .entity); try c.encode(key, forKey: .key)
        try c.encode(field, forKey: .field)
        switch value {
        case .null: try c.encodeNil(forKey: .value)
        case .bool(let b): try c.encode(b, forKey: .value)
        case .int(let i): try c.encode(i, forKey: .value)
        case .double(let d): try c.encode(d, forKey: .value)
        case .string(let t): try c.encode(t, forKey: .value)
        }
    }
}

func jsonLines(_ changes: [Change]) throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    var out = Data()
    for change in changes {
        out.append(try encoder.encode(PlainChange(change)))
        out.append(0x0A)
    }
    return out
}

/// Upserts articles 0..<count of the seeded series in batches.
func publish(_ replica: Replica, count: Int, seed: UInt64, bodyBytes: ClosedRange<Int>, batch: Int = 1_000) throws {
    var articles: [Article] = []
    for index in 0..<count {
        articles.append(Articles.make(index, seed: seed, bodyBytes: bodyBytes))
        if articles.count == batch { try replica.upsertArticles(articles); articles = [] }
    }
    if !articles.isEmpty { try replica.upsertArticles(articles) }
}

func benchBundleSize(_ options: Options) throws -> [Figure] {
    let articleCount = options.quick ? 1_000 : 10_000
    let commentCount = options.quick ? 500 : 5_000
    let articleBundleCount = options.quick ? 300 : 2_000
    var figures: [Figure] = []

    func figure(kind: String, id: String, replica: Replica, since: Knowledge, account: String?, entity: EntityKind,
                perArticle: Bool, target: String?, meets: ((Double, Double) -> Bool)?, what: String) throws {
        let (bundle, summary) = try replica.exportBundleData(for: since, account: account)
        let changes = try replica.changeLog(limit: Int.max).map(\.change).filter { $0.entity == entity }
        if changes.count != Int(summary.header.changeCount) {
            say("note: \(kind): the bundle holds \(summary.header.changeCount) changes, the log \(changes.count) of this kind")
        }
        let jsonl = try jsonLines(changes)
        let gz = try gzipSize(jsonl)
        let units = Double(perArticle ? Set(changes.map(\.key)).count : changes.count)
        let value = Double(bundle.count) / units
        let baseline = Double(gz) / units
        let ratio = value / baseline
        let unit = perArticle ? "B/article" : "B/change"
        figures.append(Figure(
            id: id, name: "3 bundle size: \(kind)", value: value, unit: unit, baseline: baseline, baselineUnit: unit,
            baselineDescription: "the same \(changes.count) changes as JSON Lines (origin, account, seq, hlc, entity, key, field, value), gzip -6",
            ratio: ratio, ratioNote: "bundle bytes / gzip JSONL bytes",
            target: target, meetsTarget: meets.map { $0(value, ratio) },
            notes: "\(what): \(changes.count) changes, bundle \(bundle.count) B, JSONL \(jsonl.count) B, gzip JSONL \(gz) B"))
        say("bundle size \(kind): " + String(format: "%.2f", value) + " \(unit) vs " + String(format: "%.2f", baseline) + " (gzip JSONL)")
    }

    // Read state: a month of reading sessions over the articles (progress rising, then read; some saved, a few
    // unsaved or marked unread again), after the articles were synced.
    do {
        var rng = SeededRNG(seed: options.seed, stream: 0x5EAD)
        let clock = ManualWallClock(millis: Articles.published(articleCount, spacingMillis: 300_000))
        let replica = try Replica.inMemory(account: "alice", replicaID: ReplicaID(UUID(uuid: uuidBytes(options.seed, 2))),
                                           options: ReplicaOptions(wallClock: clock))
        try publish(replica, count: articleCount, seed: options.seed, bodyBytes: 200...400)
        let since = try replica.knowledge()
        let ids = (0..<articleCount).map { Articles.id($0, seed: options.seed) }
        var sessions = Array(0..<articleCount).filter { _ in rng.chance(0.7) }
        sessions.shuffle(using: &rng)
        for index in sessions {
            let id = ids[index]
            clock.advance(by: Int64(rng.int(2_000...600_000)))
            var p = 0.0
            for _ in 0..<rng.int(0...3) {
                p = min(1, p + 0.1 + rng.unit() * 0.5)
                clock.advance(by: Int64(rng.int(5_000...90_000)))
                try replica.setProgress(id, (p * 100).rounded() / 100)
            }
            if rng.chance(0.9) { try replica.markRead(id) }
            if rng.chance(0.12) {
                try replica.save(id)
                if rng.chance(0.2) { clock.advance(by: 3_600_000); try replica.unsave(id) }
            }
            if rng.chance(0.03) { try replica.markUnread(id) }
        }
        try figure(kind: "read state", id: "bundle-read-state", replica: replica, since: since, account: "alice",
                   entity: .readState, perArticle: false, target: "<= 5 B/change and ratio <= 0.5",
                   meets: { $0 <= 5 && $1 <= 0.5 }, what: "\(sessions.count) reading sessions over \(articleCount) articles")
    }

    // Comments: top-level comments and replies of a sentence or a few, a quarter edited, 8% deleted.
    do {
        var rng = SeededRNG(seed: options.seed, stream: 0xC0DE)
        let clock = ManualWallClock(millis: Articles.published(articleCount, spacingMillis: 300_000))
        let ids = SeededIDs(seed: options.seed &+ 7)
        let replica = try Replica.inMemory(account: "alice", replicaID: ReplicaID(UUID(uuid: uuidBytes(options.seed, 3))),
                                           options: ReplicaOptions(wallClock: clock, makeID: { ids.next() }))
        try publish(replica, count: articleCount, seed: options.seed, bodyBytes: 200...400)
        let since = try replica.knowledge()
        var made: [(id: String, article: String)] = []
        var deleted = Set<String>()
        for _ in 0..<commentCount {
            clock.advance(by: Int64(rng.int(10_000...900_000)))
            let body = (0..<rng.int(1...4)).map { _ in Text.sentence(&rng) }.joined(separator: " ")
            if !made.isEmpty, rng.chance(0.25) {
                let parent = made[rng.recent(made.count)]
                if !deleted.contains(parent.id) {
                    let reply = try replica.addComment(to: parent.article, body: body, replyTo: parent.id)
                    made.append((reply.id, parent.article))
                    continue
                }
            }
            let article = Articles.id(rng.recent(articleCount, skew: 2), seed: options.seed)
            let comment = try replica.addComment(to: article, body: body)
            made.append((comment.id, article))
        }
        for comment in made where rng.chance(0.25) && !deleted.contains(comment.id) {
            clock.advance(by: Int64(rng.int(10_000...900_000)))
            try replica.editComment(comment.id, body: "Edit: " + Text.sentence(&rng))
        }
        for comment in made where rng.chance(0.08) {
            clock.advance(by: Int64(rng.int(10_000...900_000)))
            try replica.deleteComment(comment.id)
            deleted.insert(comment.id)
        }
        try figure(kind: "comments", id: "bundle-comments", replica: replica, since: since, account: nil,
                   entity: .comment, perArticle: false, target: "(none set)", meets: nil,
                   what: "\(commentCount) comments (25% replies), a quarter edited, 8% deleted")
    }

    // Articles: one version each, bodies of 2-4 KB.
    do {
        let replica = try Replica.inMemory(account: "alice", replicaID: ReplicaID(UUID(uuid: uuidBytes(options.seed, 4))))
        try publish(replica, count: articleBundleCount, seed: options.seed, bodyBytes: 2_048...4_096)
        try figure(kind: "articles", id: "bundle-articles", replica: replica, since: Knowledge(), account: nil,
                   entity: .article, perArticle: true, target: "(none set)", meets: nil,
                   what: "\(articleBundleCount) articles with 2-4 KB bodies")
    }
    return figures
}
