// 7. Storage budget: the device replica of figure 6 (100k articles; 1k in quick mode), 70% of its articles
// marked read (seeded), a budget of 50 MB (scaled with the article count in quick mode): the time of
// `enforceStorageBudget()` against the same UPDATEs on a copy without the search index, the sizes before and
// after, and the time to put one evicted body back from the editor's replica (in process).
import Foundation
import GRDB
import ReaderSync

func benchBudget(_ options: Options, _ corpus: BodiesCorpus) throws -> [Figure] {
    let device = corpus.device
    let source = corpus.source
    let label = corpus.label
    let budgetBytes = Int64(50_000_000 * Double(corpus.count) / 100_000)

    // 70% of the articles read, in a seeded order, a second apart.
    var rng = SeededRNG(seed: options.seed, stream: 0xB4D6E7)
    var order = Array(0..<corpus.count)
    order.shuffle(using: &rng)
    let read = order.prefix(corpus.count * 7 / 10)
    let readSeconds = try measure {
        for index in read {
            corpus.clock.advance(by: 1_000)
            try device.markRead(Articles.id(index, seed: options.seed, spacingMillis: corpus.spacingMillis))
        }
    }
    say("budget \(label): marked \(read.count) articles read in " + String(format: "%.1f s", readSeconds))

    var configuration = Configuration()
    configuration.readonly = true

    // The baseline's copy: the same file, VACUUMed, without the search index or its triggers.
    let copyPath = corpus.dir.path("reader-copy.db")
    let copySeconds = try measure {
        let queue = try DatabaseQueue(path: corpus.devicePath)
        try queue.writeWithoutTransaction { db in try db.execute(sql: "VACUUM INTO ?", arguments: [copyPath]) }
        try queue.close()
        let copy = try DatabaseQueue(path: copyPath)
        try copy.writeWithoutTransaction { db in
            for name in ["article_indexed_insert", "article_indexed_update", "article_indexed_delete"] {
                try db.execute(sql: "DROP TRIGGER \(name)")
            }
            try db.execute(sql: "DROP TABLE article_search")
            try db.execute(sql: "PRAGMA auto_vacuum = INCREMENTAL")
            try db.execute(sql: "VACUUM")
        }
        try copy.close()
    }
    let copyBefore = fileSize(copyPath)
    say("budget \(label): copy without the index made in " + String(format: "%.1f s (%.1f MiB)", copySeconds, mib(copyBefore)))

    let fileBefore = fileSize(corpus.devicePath) + fileSize(corpus.devicePath + "-wal")
    // Whether the replica can return free pages incrementally; if not, eviction VACUUMs when a quarter is free.
    let autoVacuum = try DatabaseQueue(path: corpus.devicePath, configuration: configuration).read { db in
        try Int.fetchOne(db, sql: "PRAGMA auto_vacuum") ?? -1
    }
    try device.setStorageBudget(StorageBudget(bytes: budgetBytes))
    var report: EvictionReport?
    let evictSeconds = try measure { report = try device.enforceStorageBudget() }
    guard let report else { throw BenchError("no eviction report") }
    let fileAfter = fileSize(corpus.devicePath) + fileSize(corpus.devicePath + "-wal")
    let inUseAfter = try device.storageBytes()
    let evictedKeys = try device.articlesWithoutBody(limit: Int.max)
    if evictedKeys.count != report.evicted {
        say("note: the report counts \(report.evicted) evicted bodies, the replica lacks \(evictedKeys.count)")
    }
    say("budget \(label): " + String(format: "%.1f -> %.1f MB in use (file %.1f -> %.1f MiB), %d bodies (%.1f MB of text) evicted in %.2f s%@",
                                     Double(report.bytesBefore) / 1e6, Double(report.bytesAfter) / 1e6, mib(fileBefore),
                                     mib(fileAfter), report.evicted, Double(report.evictedBodyBytes) / 1e6, evictSeconds,
                                     report.stillOverBudget ? ", still over budget" : ""))

    // The baseline: the same rows' bodies set to NULL by key, one prepared statement in one transaction, then
    // the freed pages returned as the replica does (incremental vacuum, WAL truncated).
    let copy = try DatabasePool(path: copyPath)
    let baselineSeconds = try measure {
        try copy.write { db in
            let update = try db.makeStatement(sql: "UPDATE article SET body = NULL WHERE key = ?")
            for key in evictedKeys { try update.execute(arguments: [key]) }
        }
        try copy.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA incremental_vacuum")
            try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
        }
    }
    let copyUpdated = fileSize(copyPath) + fileSize(copyPath + "-wal")
    // The rows shrink but their pages stay (SQLite does not merge sparse leaves): only VACUUM compacts them.
    let copyVacuumSeconds = try measure { try copy.vacuum() }
    _ = try copy.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
    let copyAfter = fileSize(copyPath) + fileSize(copyPath + "-wal")
    say("budget \(label): baseline UPDATE of \(evictedKeys.count) rows " + String(format: "%.2f s; copy %.1f -> %.1f MiB, %.1f MiB after a VACUUM of %.2f s",
                                                                                   baselineSeconds, mib(copyBefore), mib(copyUpdated), mib(copyAfter), copyVacuumSeconds))

    // One body back, in process: the editor's replica hands it over, the device checks and stores it. The
    // baseline reads the same body from the editor's file and writes it into the copy, own transaction each.
    var picker = SeededRNG(seed: options.seed, stream: 0xF111)
    let fills = Array(evictedKeys.shuffled(using: &picker).prefix(options.quick ? 10 : 30))
    let editorFile = try DatabaseQueue(path: corpus.dir.path("editor.db"), configuration: configuration)
    defer { try? editorFile.close() }
    var fillTimes: [Double] = [], plainTimes: [Double] = []
    for key in fills {
        var filled = 0
        fillTimes.append(try measure { filled = try device.fillBodies(source.articleBodies([key])).filled })
        if filled != 1 { say("note: filling \(key) filled \(filled) bodies") }
        plainTimes.append(try measure {
            let body = try editorFile.read { db in
                try String.fetchOne(db.cachedStatement(sql: "SELECT body FROM article WHERE key = ?"), arguments: [key])
            }
            try copy.write { db in
                try db.cachedStatement(sql: "UPDATE article SET body = ? WHERE key = ?").execute(arguments: [body, key])
            }
        })
    }
    try copy.close()
    let fillMillis = percentile(fillTimes, 0.5) * 1000
    let plainFillMillis = percentile(plainTimes, 0.5) * 1000
    say("budget \(label): one body back " + String(format: "%.2f ms (p50 of %d) vs %.2f ms plain", fillMillis, fills.count, plainFillMillis))

    let budgetText = StorageBudget.format(bytes: budgetBytes)
    let setup = "device replica of \(corpus.count) articles (2-4 KB bodies) applied from an editor's replica, \(read.count) (70%) "
        + "marked read in a seeded order; budget \(budgetText), unread kept 7 days (the last 2% of the corpus, which spans 347 days)"
    let evictedText = String(format: "%d bodies evicted (%.1f MB of text)", report.evicted, Double(report.evictedBodyBytes) / 1e6)
    let vacuumed = autoVacuum != 2 && report.fileBytes < report.bytesAfter
    let reclaim = autoVacuum == 2 ? "returned the free pages by PRAGMA incremental_vacuum"
        : "the file had auto_vacuum \(autoVacuum), not INCREMENTAL, so " + (vacuumed ? "it ran a full VACUUM (over a quarter of the pages were free)" : "no pages went back to the file system")
    return [
        Figure(id: "budget-size-\(label)", name: "7 storage budget \(label): in use after eviction",
               value: Double(report.bytesAfter) / 1e6, unit: "MB", baseline: Double(report.bytesBefore) / 1e6, baselineUnit: "MB",
               baselineDescription: "the same replica before eviction (EvictionReport.bytesBefore: pages in use)",
               ratio: Double(report.bytesAfter) / Double(report.bytesBefore), ratioNote: "bytesAfter / bytesBefore",
               target: "<= budget (\(budgetText))", meetsTarget: !report.stillOverBudget && report.bytesAfter <= budgetBytes,
               notes: "\(setup); \(evictedText)" + (report.stillOverBudget ? "; still over budget (stillOverBudget): every body left is protected" : "")
                   + String(format: "; bytesAfter counts the pages in use before they are compacted: storageBytes() after enforceStorageBudget() returned is %.1f MB", Double(inUseAfter) / 1e6)),
        Figure(id: "budget-file-\(label)", name: "7 storage budget \(label): file after eviction",
               value: mib(Int(report.fileBytes)), unit: "MiB", baseline: mib(copyAfter), baselineUnit: "MiB",
               baselineDescription: "a copy of the replica made before eviction without the search index, after the same bodies were set to NULL, then VACUUMed",
               ratio: Double(report.fileBytes) / Double(copyAfter), ratioNote: "EvictionReport.fileBytes / copy file",
               target: nil, meetsTarget: nil,
               notes: String(format: "replica file %.1f MiB before (with its WAL), %.1f MiB after on disk; the copy was %.1f MiB before and %.1f MiB after the UPDATEs and PRAGMA incremental_vacuum, before its VACUUM (%.2f s)",
                             mib(fileBefore), mib(fileAfter), mib(copyBefore), mib(copyUpdated), copyVacuumSeconds)),
        Figure(id: "budget-evict-\(label)", name: "7 storage budget \(label): enforceStorageBudget() time",
               value: evictSeconds, unit: "s", baseline: baselineSeconds, baselineUnit: "s",
               baselineDescription: "UPDATE article SET body = NULL WHERE key = ? for the same \(evictedKeys.count) rows (prepared, one transaction) on that copy without the index, then PRAGMA incremental_vacuum and wal_checkpoint(TRUNCATE)",
               ratio: evictSeconds / baselineSeconds, ratioNote: "eviction time / plain UPDATE time",
               target: nil, meetsTarget: nil,
               notes: String(format: "%@; %.1f us per evicted body; includes choosing the candidates, the index's delete and re-insert of each row, its 'optimize' merge and returning the pages: %@; the copy's VACUUM took %.2f s more",
                             evictedText, evictSeconds / Double(max(1, report.evicted)) * 1e6, reclaim, copyVacuumSeconds)),
        Figure(id: "budget-fill-\(label)", name: "7 storage budget \(label): one body back (in process)",
               value: fillMillis, unit: "ms", baseline: plainFillMillis, baselineUnit: "ms",
               baselineDescription: "SELECT body FROM article WHERE key = ? on the editor's file, then UPDATE article SET body = ? WHERE key = ? on the copy without the index, own transaction each",
               ratio: fillMillis / plainFillMillis, ratioNote: "fill time / plain read-and-update time",
               target: nil, meetsTarget: nil,
               notes: "p50 of \(fills.count) evicted bodies, each device.fillBodies(editor.articleBodies([id])): the in-process path (digest checked, search index updated); the HTTP route POST /v1/articles/bodies is not measured here"),
    ]
}
