import Foundation
import GRDB
import Testing
@testable import ReaderSync

/// One simulated world: several replicas of several accounts, random operations, random sync.
struct Simulation {
    struct Device {
        var replica: Replica
        let clock: ManualWallClock
        let options: ReplicaOptions
        /// How far this device's clock is off now (0, or two hours either way for a while).
        var skew: Int64 = 0
        /// A backup of this device's replica file, to restore later (device 1 only: it lives in a file).
        var backup: String?
    }
    var rng: SeededRandom
    var devices: [Device] = []
    var pending: [(data: Data, target: Int)] = []
    var createdComments = Set<ByteString>()
    /// Keys that are canonically equal but not byte-equal, and one that is neither.
    let articleIDs = ["a1", "caf\u{E9}", "cafe\u{301}", "\u{1F4F0} news"]
    var log: [String] = []
    let directory = TempDir()
    var files = 0

    init(seed: UInt64) throws {
        rng = SeededRandom(seed: seed)
        let base: Int64 = 1_751_500_000_000
        for (index, account) in ["alice", "alice", "alice", "bob", "carol"].enumerated() {
            // Wall clocks disagree by a little, so which device writes "later" varies from step to step.
            let clock = ManualWallClock(millis: base + Int64.random(in: -30...30, using: &rng))
            let counter = Counter()
            let options = ReplicaOptions(wallClock: clock, makeID: { "r\(index)-c\(counter.next())" })
            let replicaID = ReplicaID(bytes: (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) }) ?? .random()
            let replica = index == 1
                ? try Replica.create(at: directory.path("device1.db"), account: account, options: options)
                : try Replica.inMemory(account: account, replicaID: replicaID, options: options)
            devices.append(Device(replica: replica, clock: clock, options: options))
        }
        try devices[0].replica.upsertArticles(articleIDs.map { sampleArticle($0) })
    }

    mutating func pick<T>(_ items: [T]) -> T? {
        items.isEmpty ? nil : items[Int.random(in: 0..<items.count, using: &rng)]
    }

    mutating func step() throws {
        for i in devices.indices {
            // Mostly small steps, sometimes none (same millisecond), sometimes a backwards jump, and now and then a
            // clock that runs two hours ahead or behind for a while, then is fixed.
            let roll = Int.random(in: 0..<40, using: &rng)
            devices[i].clock.advance(by: roll == 0 ? 0 : roll == 1 ? -500 : Int64.random(in: 1...40, using: &rng))
            if roll == 2 {
                let skew: Int64 = devices[i].skew != 0 ? 0 : Bool.random(using: &rng) ? 7_200_000 : -7_200_000
                devices[i].clock.advance(by: skew - devices[i].skew)
                devices[i].skew = skew
                log.append("r\(i) clock skew \(skew)")
            }
        }
        let d = Int.random(in: 0..<devices.count, using: &rng)
        let replica = devices[d].replica
        let held = try replica.feed().map(\.article.id)
        guard let article = pick(held) else {
            try syncPair()
            return
        }
        // Read-state operations are weighted up: they are where concurrent writes to one field meet most.
        let roll = Int.random(in: 0..<20, using: &rng)
        let op = roll < 14 ? roll : [1, 2, 2, 2, 1, 0][roll - 14]
        log.append("r\(d) op\(op) \(article)")
        do {
            switch op {
            case 0: try replica.markRead(article)
            case 1: try replica.markUnread(article)
            case 2:
                let extremes = [0, 1, Double.leastNonzeroMagnitude, 1 - Double.ulpOfOne, 0.1 + 0.2]
                let fraction = Bool.random(using: &rng) ? Double(Int.random(in: 0...10, using: &rng)) / 10 : pick(extremes) ?? 0
                try replica.setProgress(article, fraction)
            case 3: try replica.save(article)
            case 4: try replica.unsave(article)
            case 5:
                let parent = pick(try replica.comments(on: article).filter { !$0.comment.isDeleted }.map(\.comment.id))
                let reply = Bool.random(using: &rng) ? parent : nil
                let c = try replica.addComment(to: article, body: "text \(Int.random(in: 0...999, using: &rng))", replyTo: reply)
                createdComments.insert(ByteString(c.id))
            case 6, 7:
                let own = try allComments(replica).filter { $0.author == replica.account && !$0.isDeleted }
                if let c = pick(own) {
                    if op == 6 { try replica.editComment(c.id, body: "edit \(Int.random(in: 0...999, using: &rng))") }
                    else { try replica.deleteComment(c.id) }
                }
            case 8 where Int.random(in: 0..<4, using: &rng) == 0:
                try backupOrRestore()
            case 8:
                var a = try replica.article(article).article
                a.title = "v\(Int.random(in: 0...3, using: &rng))"
                a.updatedAt = Date(timeIntervalSince1970: Double(Int.random(in: 0...3, using: &rng)) * 1000)
                try replica.upsertArticles([a])
            case 9, 10: try syncPair()
            case 11, 12: try captureBundle()
            case 13 where Bool.random(using: &rng):
                // A storage budget at work: the body leaves this device (not a change); it comes back, or not, from
                // whoever holds it on a later sync, and must never change what replicas agree on.
                try replica.markRead(article)
                _ = try replica.evictBody(of: article)
            default: try deliverPending()
            }
        } catch let error as ReaderSyncError {
            switch error {
            case .invalidInput, .notFound, .forbidden: break   // refused user actions change nothing
            default: throw error
            }
        }
    }

    /// Device 1 (a file) takes a backup of itself, or, if it has one, is restored from it: the user restores a
    /// phone backup and goes on. Nothing either history holds may be lost.
    mutating func backupOrRestore() throws {
        if let backup = devices[1].backup {
            // What it wrote since the backup reached another device first (else the restore itself loses it).
            _ = try devices[1].replica.sync(with: devices[0].replica)
            files += 1
            let path = directory.path("device1-restored-\(files).db")
            try FileManager.default.copyItem(atPath: backup, toPath: path)
            devices[1].replica = try Replica.open(at: path, options: devices[1].options)
            devices[1].backup = nil
            // Its first sync is with a device that holds its whole history (as a phone's first sync is with the
            // server): it finds it was restored and continues under a new id. (Before that meeting, its new changes
            // must not reach a third replica: see merge-rules.md, "Identity", for what happens then.)
            if Bool.random(using: &rng), let comment = try? replica(1).addComment(to: articleIDs[0], body: "written after the restore") {
                createdComments.insert(ByteString(comment.id))
            }
            _ = try devices[1].replica.sync(with: devices[0].replica)
            log.append("r1 restored from its backup")
        } else {
            files += 1
            let path = directory.path("device1-backup-\(files).db")
            try devices[1].replica.database.backup(to: try DatabaseQueue(path: path))
            devices[1].backup = path
            log.append("r1 backed up")
        }
    }

    func replica(_ index: Int) -> Replica { devices[index].replica }

    func allComments(_ replica: Replica) throws -> [ReaderSync.Comment] {
        func flatten(_ threads: [CommentThread]) -> [ReaderSync.Comment] { threads.flatMap { [$0.comment] + flatten($0.replies) } }
        return try articleIDs.flatMap { try flatten(replica.comments(on: $0)) }
    }

    mutating func syncPair() throws {
        let a = Int.random(in: 0..<devices.count, using: &rng)
        var b = Int.random(in: 0..<devices.count, using: &rng)
        if a == b { b = (b + 1) % devices.count }
        log.append("sync r\(a) r\(b)")
        _ = try devices[a].replica.sync(with: devices[b].replica)
    }

    /// Exports a bundle for another replica now, to deliver later (possibly twice, in any order).
    mutating func captureBundle() throws {
        let a = Int.random(in: 0..<devices.count, using: &rng)
        var b = Int.random(in: 0..<devices.count, using: &rng)
        if a == b { b = (b + 1) % devices.count }
        let target = devices[b].replica
        let (data, _) = try devices[a].replica.exportBundleData(for: try target.knowledge(), account: target.account)
        pending.append((data, b))
        log.append("capture r\(a)->r\(b)")
    }

    mutating func deliverPending() throws {
        guard !pending.isEmpty else { return }
        let index = Int.random(in: 0..<pending.count, using: &rng)
        let bundle = pending[index]
        if Bool.random(using: &rng) { pending.remove(at: index) }   // else: it will be delivered again
        log.append("deliver #\(index) -> r\(bundle.target)")
        do {
            try devices[bundle.target].replica.applyBundle(data: bundle.data)
        } catch ReaderSyncError.missingChanges {
            // A bundle overtaken by a gap: refused whole; fine, the changes come another way.
        }
    }

    /// Delivers what is left in random order, then syncs every pair until nothing moves.
    mutating func finish() throws {
        while !pending.isEmpty { try deliverPending() }
        for _ in 0..<3 {
            for a in devices.indices {
                for b in devices.indices where a < b { _ = try devices[a].replica.sync(with: devices[b].replica) }
            }
        }
    }
}

@Suite("Convergence: random operations, random sync orders, duplicated and reordered bundles")
struct ConvergenceTests {
    static var seeds: [UInt64] {
        if let text = ProcessInfo.processInfo.environment["READERSYNC_SEED"], let seed = UInt64(text) { return [seed] }
        return (1...80).map { UInt64($0) &* 0x9E37_79B9 }
    }

    @Test(arguments: seeds)
    func replicasConverge(seed: UInt64) throws {
        var sim = try Simulation(seed: seed)
        for _ in 0..<120 { try sim.step() }
        try sim.finish()
        let replay = "replay with READERSYNC_SEED=\(seed) swift test --filter ConvergenceTests"

        // Same account: byte-identical dumps (bodies as their digests: devices evicted some at random).
        let byAccount = Dictionary(grouping: sim.devices.map(\.replica), by: \.account)
        for (account, replicas) in byAccount {
            let dumps = try replicas.map { try dumpString($0, bodies: .digests) }
            #expect(Set(dumps).count == 1, "\(account)'s replicas diverged; \(replay)")
        }
        // Every account: the same articles and comments (the dump without read state).
        let shared = try sim.devices.map { try dumpString($0.replica, account: "nobody", bodies: .digests) }
        #expect(Set(shared).count == 1, "shared state diverged; \(replay)")
        // Every body a replica holds is the winning version's (its digest), and the search index matches the rows.
        for device in sim.devices {
            for item in try device.replica.feed() where try device.replica.bodyState(of: item.article.id) == .held {
                #expect(ArticleBody(id: item.article.id, body: item.article.body).sha256 == (try bodyDigest(device.replica, item.article.id)),
                        "a held body is not the winner's; \(replay)")
            }
            try device.replica.database.write { db in
                try db.execute(sql: "INSERT INTO article_search (article_search, rank) VALUES ('integrity-check', 1)")
            }
        }
        // Nothing lost: every comment written anywhere is on every replica.
        for device in sim.devices {
            let ids = Set(try sim.allComments(device.replica).map { ByteString($0.id) })
            #expect(ids == sim.createdComments, "comments lost; \(replay)")
        }
        // Read state stayed with its account.
        for device in sim.devices {
            let foreign = try device.replica.changeLog(limit: 100_000)
                .filter { $0.change.entity == .readState && $0.originAccount != device.replica.account }
            #expect(foreign.isEmpty, "read state crossed accounts; \(replay)")
        }
    }

    @Test func mergeIsIndependentOfArrivalOrder() throws {
        // The same set of bundles applied in every order of three gives the same dump.
        let clock = ManualWallClock(millis: 1_751_500_000_000)
        let source = try Replica.inMemory(account: "alice", options: options(clock: clock))
        try source.upsertArticles([sampleArticle("a")])
        let a = try Replica.inMemory(account: "alice", options: options(clock: clock, idPrefix: "x"))
        let b = try Replica.inMemory(account: "alice", options: options(clock: clock, idPrefix: "y"))
        try sync(source, a)
        try sync(source, b)
        try a.setProgress("a", 0.9); clock.advance(by: 1)
        try b.markUnread("a"); clock.advance(by: 1)
        try b.setProgress("a", 0.2); clock.advance(by: 1)
        try source.markRead("a")
        let bundles = [
            try a.exportBundleData(for: try source.knowledge(), account: "alice").data,
            try b.exportBundleData(for: try source.knowledge(), account: "alice").data,
            try source.exportBundleData(for: Knowledge(), account: "alice").data,
        ]
        var dumps = Set<String>()
        for order in [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]] {
            let target = try Replica.inMemory(account: "alice")
            // The full bundle must come first or alongside: others may depend on the article; retry on gaps.
            var queue = order
            var rounds = 0
            while let next = queue.first, rounds < 10 {
                queue.removeFirst()
                do { try target.applyBundle(data: bundles[next]) } catch ReaderSyncError.missingChanges { queue.append(next) }
                rounds += 1
            }
            dumps.insert(try dumpString(target))
        }
        #expect(dumps.count == 1)
        #expect(try #require(dumps.first).contains("\"progress\" : 0.2"))
    }
}
