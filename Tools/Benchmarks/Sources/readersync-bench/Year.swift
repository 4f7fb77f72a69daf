// 5. Storage after a simulated year: articles published daily (a tenth corrected), read-state changes and
// comments (with edits and deletes) by two accounts on three replicas that sync every day; the size of one
// replica's file against the size of its live data (the canonical dump).
import Foundation
import GRDB
import ReaderSync

func benchYear(_ options: Options) throws -> [Figure] {
    // Quick mode (what CI runs, on its debug build): a third of a year at a fiftieth of the density, so the
    // figure is printed in about a minute; the full run is the year the issue names.
    let days = options.quick ? 120 : 365
    let scale = (options.quick ? 1.0 / 50 : 1.0) * Double(days) / 365
    let articleTotal = Int(10_000 * scale)
    let readTotal = Int(1_000_000 * scale)
    let commentTotal = Int(20_000 * scale)
    let editTotal = commentTotal / 4
    let deleteTotal = commentTotal * 8 / 100
    let dayMillis: Int64 = 86_400_000
    let spacing = Int64(days) * dayMillis / Int64(articleTotal)
    let laptopShare = 0.05

    let dir = try TempDir("year")
    defer { dir.cleanUp() }
    var rng = SeededRNG(seed: options.seed, stream: 0x7EA5)
    let clock = ManualWallClock(millis: Articles.epochMillis)
    let aliceIDs = SeededIDs(seed: options.seed &+ 101)
    let bobIDs = SeededIDs(seed: options.seed &+ 202)
    let alicePhone = try Replica.inMemory(account: "alice", replicaID: ReplicaID(UUID(uuid: uuidBytes(options.seed, 11))),
                                          options: ReplicaOptions(wallClock: clock, makeID: { aliceIDs.next() }))
    let bobPhone = try Replica.inMemory(account: "bob", replicaID: ReplicaID(UUID(uuid: uuidBytes(options.seed, 12))),
                                        options: ReplicaOptions(wallClock: clock, makeID: { bobIDs.next() }))
    let laptopPath = dir.path("alice-laptop.db")
    var laptop: Replica? = try Replica.create(at: laptopPath, account: "alice",
                                              options: ReplicaOptions(wallClock: clock, makeID: { aliceIDs.next() }))

    struct TrackedComment { var id: String; var article: Int; var alice: Bool; var day: Int; var deleted: Bool }
    var comments: [TrackedComment] = []
    var aliceComments: [Int] = []
    var bobComments: [Int] = []
    var progress: [Int: Double] = [:]  // (account, article) -> last progress written
    var published = 0
    var corrections = 0
    var readChanges = 0
    var commentsMade = 0, edits = 0, deletes = 0, laptopOps = 0, syncs = 0
    var opCounts: [String: Int] = [:]
    let ids = (0..<articleTotal).map { Articles.id($0, seed: options.seed, spacingMillis: spacing) }

    func syncRound() throws {
        guard let laptop else { return }
        _ = try alicePhone.sync(with: bobPhone)
        _ = try alicePhone.sync(with: laptop)
        _ = try alicePhone.sync(with: bobPhone)
        syncs += 3
    }

    let started = DispatchTime.now().uptimeNanoseconds
    for day in 0..<days {
        let dayStart = Articles.epochMillis + Int64(day) * dayMillis
        clock.set(max(clock.nowMillis(), dayStart))
        // Held everywhere: what the last sync round carried (articles published before today).
        let available = published

        // The newsroom (bob's phone) publishes today's articles, and corrects a tenth of those from two days ago.
        var todays: [Article] = []
        while published < articleTotal && Articles.published(published, spacingMillis: spacing) < dayStart + dayMillis {
            todays.append(Articles.make(published, seed: options.seed, bodyBytes: 2_048...4_096, spacingMillis: spacing))
            published += 1
        }
        let twoDaysAgo = dayStart - 2 * dayMillis
        var corrected: [Article] = []
        if day >= 2 {
            for index in 0..<published {
                let at = Articles.published(index, spacingMillis: spacing)
                if at >= twoDaysAgo && at < twoDaysAgo + dayMillis
                    && SeededRNG(seed: options.seed, stream: UInt64(index) &+ 0xC0CC).peekFirst() % 10 == 0 {
                    corrected.append(Articles.make(index, seed: options.seed, bodyBytes: 2_048...4_096, spacingMillis: spacing, revision: 1))
                }
            }
        }
        if !todays.isEmpty { try bobPhone.upsertArticles(todays) }
        if !corrected.isEmpty { try bobPhone.upsertArticles(corrected); corrections += corrected.count }

        // Today's user actions, spread over the day.
        if available > 0 && day > 0 {
            let readGoal = readTotal * day / (days - 1)
            let commentGoal = commentTotal * day / (days - 1)
            let editGoal = editTotal * day / (days - 1)
            let deleteGoal = deleteTotal * day / (days - 1)
            enum Kind { case read, comment, edit, delete }
            var kinds: [Kind] = []
            // Read-state ops write 1 change (2 for mark-unread): about this many ops reach today's goal.
            kinds += Array(repeating: .read, count: max(0, Int(Double(readGoal - readChanges) / 1.05)))
            kinds += Array(repeating: .comment, count: max(0, commentGoal - commentsMade))
            kinds += Array(repeating: .edit, count: max(0, editGoal - edits))
            kinds += Array(repeating: .delete, count: max(0, deleteGoal - deletes))
            kinds.shuffle(using: &rng)
            let step = max(1, (dayMillis - 3_600_000) / Int64(kinds.count + 1))
            for kind in kinds {
                clock.advance(by: step)
                let isAlice = rng.chance(0.5)
                let onLaptop = isAlice && rng.chance(laptopShare)
                let replica = isAlice ? (onLaptop ? laptop! : alicePhone) : bobPhone
                if onLaptop { laptopOps += 1 }
                switch kind {
                case .read:
                    guard readChanges < readTotal else { continue }
                    let article = rng.recent(available, skew: 4)
                    let id = ids[article]
                    let key = article * 2 + (isAlice ? 0 : 1)
                    let u = rng.unit()
                    if u < 0.45 {
                        try replica.markRead(id); readChanges += 1; opCounts["read", default: 0] += 1
                    } else if u < 0.85 {
                        let p = min(1, (progress[key] ?? 0) + 0.05 + rng.unit() * 0.3)
                        progress[key] = p
                        try replica.setProgress(id, (p * 100).rounded() / 100); readChanges += 1
                        opCounts["progress", default: 0] += 1
                    } else if u < 0.92 {
                        try replica.save(id); readChanges += 1; opCounts["save", default: 0] += 1
                    } else if u < 0.95 {
                        try replica.unsave(id); readChanges += 1; opCounts["unsave", default: 0] += 1
                    } else {
                        try replica.markUnread(id); readChanges += 2; progress[key] = 0; opCounts["unread", default: 0] += 1
                    }
                case .comment:
                    let body = (0..<rng.int(1...4)).map { _ in Text.sentence(&rng) }.joined(separator: " ")
                    var made: Comment?
                    if !comments.isEmpty && rng.chance(0.25) {
                        let parentIndex = rng.recent(comments.count, skew: 2)
                        let parent = comments[parentIndex]
                        if !parent.deleted && parent.day < day {
                            made = try replica.addComment(to: ids[parent.article], body: body, replyTo: parent.id)
                            comments.append(TrackedComment(id: made!.id, article: parent.article, alice: isAlice, day: day, deleted: false))
                        }
                    }
                    if made == nil {
                        let article = rng.recent(available, skew: 3)
                        made = try replica.addComment(to: ids[article], body: body)
                        comments.append(TrackedComment(id: made!.id, article: article, alice: isAlice, day: day, deleted: false))
                    }
                    if isAlice { aliceComments.append(comments.count - 1) } else { bobComments.append(comments.count - 1) }
                    commentsMade += 1
                case .edit, .delete:
                    let own = isAlice ? aliceComments : bobComments
                    guard !own.isEmpty else { continue }
                    var chosen: Int?
                    for _ in 0..<8 {
                        let candidate = own[rng.recent(own.count, skew: 2)]
                        if !comments[candidate].deleted && comments[candidate].day < day { chosen = candidate; break }
                    }
                    guard let chosen else { continue }
                    if kind == .edit {
                        try replica.editComment(comments[chosen].id, body: "Edit: " + Text.sentence(&rng)); edits += 1
                    } else {
                        try replica.deleteComment(comments[chosen].id); comments[chosen].deleted = true; deletes += 1
                    }
                }
            }
        }
        try syncRound()
        if day % 73 == 72 {
            say(String(format: "year: day %d, %d articles, %d read-state changes, %d comments, %.0f s", day + 1, published,
                       readChanges, commentsMade, Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9))
        }
    }
    try syncRound()
    let simulationSeconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9

    // The live data: the canonical dump of the laptop (everything it holds: articles, comments, alice's read state).
    let dump = try laptop!.canonicalDump()
    let logEntries = try laptop!.changeLog(limit: Int.max)
    var logByKind: [String: Int] = [:]
    for entry in logEntries { logByKind[entry.change.entity.description, default: 0] += 1 }
    let phoneDump = try alicePhone.canonicalDump()
    if phoneDump != dump { say("note: alice's phone and laptop dumps differ (\(phoneDump.count) vs \(dump.count) bytes)") }
    laptop = nil  // closes the pool

    // Checkpoint, measure, then VACUUM a copy.
    let queue = try DatabaseQueue(path: laptopPath)
    let checkpoint = try queue.writeWithoutTransaction { db in
        try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)")
    }
    let fileBytes = fileSize(laptopPath) + fileSize(laptopPath + "-wal")
    let (pageSize, pages, freePages) = try queue.read { db in
        (try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 0, try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0,
         try Int.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0)
    }
    var breakdown = ""
    if let rows = try? queue.read({ db in
        try Row.fetchAll(db, sql: "SELECT name, SUM(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY bytes DESC LIMIT 8")
    }) {
        breakdown = rows.map { "\($0["name"] as String? ?? "?") \(String(format: "%.1f", mib($0["bytes"] as Int? ?? 0))) MiB" }
            .joined(separator: ", ")
    }
    let vacuumedPath = dir.path("vacuumed.db")
    try queue.writeWithoutTransaction { db in try db.execute(sql: "VACUUM INTO ?", arguments: [vacuumedPath]) }
    try queue.close()
    let vacuumedBytes = fileSize(vacuumedPath)
    let dumpBytes = dump.count
    say(String(format: "year: %.0f s simulated; laptop file %.1f MiB (%.1f MiB vacuumed), dump %.1f MiB", simulationSeconds,
               mib(fileBytes), mib(vacuumedBytes), mib(dumpBytes)))

    let history = "\(published) articles (\(corrections) corrected), \(readChanges) read-state changes "
        + "(\(opCounts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", "))), "
        + "\(commentsMade) comments, \(edits) edits, \(deletes) deletes; accounts alice (phone in memory, laptop file: "
        + "\(laptopOps) of alice's ops) and bob (phone in memory, publishes the articles); \(syncs) syncs (3 a day); "
        + String(format: "simulated in %.0f s", simulationSeconds)
    let layout = "checkpoint \(checkpoint.map { "\($0)" } ?? "?"); \(pages) pages of \(pageSize) B, \(freePages) free; "
        + "change log keeps \(logEntries.count) entries (\(logByKind.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")))"
        + (breakdown.isEmpty ? "" : "; by table/index: \(breakdown)")
    let baselineDescription = "byte size of the laptop's canonical dump (Replica.canonicalDump(), JSON of every live article, comment and read state it holds)"
    return [
        Figure(id: "year-storage", name: options.quick ? "5 storage after 120 days (quick): file (checkpointed)" : "5 storage after a year: file (checkpointed)",
               value: mib(fileBytes), unit: "MiB", baseline: mib(dumpBytes), baselineUnit: "MiB",
               baselineDescription: baselineDescription, ratio: Double(fileBytes) / Double(dumpBytes),
               ratioNote: "file bytes (after PRAGMA wal_checkpoint(TRUNCATE)) / dump bytes",
               target: "ratio <= 1.5", meetsTarget: Double(fileBytes) / Double(dumpBytes) <= 1.5,
               notes: "\(history); \(layout)"),
        Figure(id: "year-storage-vacuumed", name: options.quick ? "5 storage after 120 days (quick): file (VACUUM INTO copy)" : "5 storage after a year: file (VACUUM INTO copy)",
               value: mib(vacuumedBytes), unit: "MiB", baseline: mib(dumpBytes), baselineUnit: "MiB",
               baselineDescription: baselineDescription, ratio: Double(vacuumedBytes) / Double(dumpBytes),
               ratioNote: "vacuumed file bytes / dump bytes",
               target: "ratio <= 1.5", meetsTarget: Double(vacuumedBytes) / Double(dumpBytes) <= 1.5,
               notes: nil),
    ]
}
