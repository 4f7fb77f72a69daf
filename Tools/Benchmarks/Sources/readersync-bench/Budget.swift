// 7. Storage budget: the device replica of figure 6 (100k articles; 1k in quick mode), 70% of its articles
// marked read (seeded), a budget of 50 MB (scaled with the article count in quick mode): the time of
// `enforceStorageBudget()` against the same UPDATEs on a copy without the search index, the sizes before and
// after, and the time to put one evicted body back: from the editor's replica in process, and from the reference
// server over HTTP on 127.0.0.1 (`POST /v1/articles/bodies`, through `Replica.fetchBodies(_:using:)`).
import Foundation
import GRDB
import ReaderSync
import ReaderSyncServer

func benchBudget(_ options: Options, _ corpus: BodiesCorpus) async throws -> [Figure] {
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
    let autoVacuum = try await DatabaseQueue(path: corpus.devicePath, configuration: configuration).read { db in
        try Int.fetchOne(db, sql: "PRAGMA auto_vacuum") ?? -1
    }
    try await device.setStorageBudget(StorageBudget(bytes: budgetBytes))
    var report: EvictionReport?
    let evictSeconds = try measure { report = try device.enforceStorageBudget() }
    guard let report else { throw BenchError("no eviction report") }
    let fileAfter = fileSize(corpus.devicePath) + fileSize(corpus.devicePath + "-wal")
    let inUseAfter = try await device.storageBytes()
    let evictedKeys = try await device.articlesWithoutBody(limit: Int.max)
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
    _ = try await copy.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
    let copyAfter = fileSize(copyPath) + fileSize(copyPath + "-wal")
    say("budget \(label): baseline UPDATE of \(evictedKeys.count) rows " + String(format: "%.2f s; copy %.1f -> %.1f MiB, %.1f MiB after a VACUUM of %.2f s",
                                                                                   baselineSeconds, mib(copyBefore), mib(copyUpdated), mib(copyAfter), copyVacuumSeconds))

    // One body back, in process: the editor's replica hands it over, the device checks and stores it. The
    // baseline reads the same body from the editor's file and writes it into the copy, own transaction each.
    var picker = SeededRNG(seed: options.seed, stream: 0xF111)
    let fills = Array(evictedKeys.shuffled(using: &picker).prefix(options.quick ? 10 : 30))
    let editorFile = try DatabaseQueue(path: corpus.dir.path("editor.db"), configuration: configuration)
    defer { try? editorFile.close() }
    // The baseline of both fill figures: read the body from the editor's file, write it into the copy.
    func plainFill(_ key: String) throws {
        let body = try editorFile.read { db in
            try String.fetchOne(db.cachedStatement(sql: "SELECT body FROM article WHERE key = ?"), arguments: [key])
        }
        try copy.write { db in
            try db.cachedStatement(sql: "UPDATE article SET body = ? WHERE key = ?").execute(arguments: [body, key])
        }
    }
    var fillTimes: [Double] = [], plainTimes: [Double] = []
    for key in fills {
        var filled = 0
        fillTimes.append(try measure { filled = try device.fillBodies(source.articleBodies([key])).filled })
        if filled != 1 { say("note: filling \(key) filled \(filled) bodies") }
        plainTimes.append(try measure { try plainFill(key) })
    }
    let fillMillis = percentile(fillTimes, 0.5) * 1000
    let plainFillMillis = percentile(plainTimes, 0.5) * 1000
    say("budget \(label): one body back " + String(format: "%.2f ms (p50 of %d) vs %.2f ms plain", fillMillis, fills.count, plainFillMillis))

    // One body back from the reference server: the editor pushes its replica to a server on 127.0.0.1 (not
    // timed as part of the figure), then the device fetches evicted bodies one request each, other ids than
    // above. The baseline is the same plain read-and-update on SQLite, measured again between the requests.
    let store = try SQLiteServerStore(path: corpus.dir.path("server.db"))
    let editorAccount = try await store.addAccount(name: "editor", role: .editor)
    let readerAccount = try await store.addAccount(name: "reader", role: .reader)
    let server = try await RunningServer.start(store: store)
    var pushSeconds = 0.0
    var httpTimes: [Double] = [], httpPlainTimes: [Double] = []
    let fetched: [String]
    do {
        pushSeconds = try await measureAsync {
            let report = try await source.sync(using: URLSessionTransport(url: server.url, token: editorAccount.token, timeout: 600))
            if report.pushed.applied != corpus.count {
                say("note: the editor pushed \(report.pushed.applied) of \(corpus.count) articles")
            }
        }
        say("budget \(label): the editor pushed its replica to the server in " + String(format: "%.1f s", pushSeconds))
        let transport = try URLSessionTransport(url: server.url, token: readerAccount.token, timeout: 60)
        let used = Set(fills.map { Array($0.utf8) })  // keys compare as bytes
        fetched = Array(evictedKeys.shuffled(using: &picker).filter { !used.contains(Array($0.utf8)) }.prefix(options.quick ? 10 : 30))
        // One request first, so that the connection is open: the figure is a fetch on a running app's session.
        let taken = used.union(fetched.map { Array($0.utf8) })
        if let warm = evictedKeys.first(where: { !taken.contains(Array($0.utf8)) }) {
            _ = try await device.fetchBodies([warm], using: transport)
        }
        for key in fetched {
            var filled = 0
            httpTimes.append(try await measureAsync { filled = try await device.fetchBodies([key], using: transport).filled })
            if filled != 1 { say("note: fetching \(key) from the server filled \(filled) bodies") }
            httpPlainTimes.append(try measure { try plainFill(key) })
        }
    } catch {
        await server.stop()
        throw error
    }
    await server.stop()
    try copy.close()
    let httpMillis = percentile(httpTimes, 0.5) * 1000
    let httpP99Millis = percentile(httpTimes, 0.99) * 1000
    let httpPlainMillis = percentile(httpPlainTimes, 0.5) * 1000
    say("budget \(label): one body back from the server " + String(format: "%.2f ms (p50 of %d, max %.2f ms) vs %.2f ms plain",
                                                                     httpMillis, fetched.count, httpP99Millis, httpPlainMillis))

    let budgetText = StorageBudget.format(bytes: budgetBytes)
    let setup = "device replica of \(corpus.count) articles (2-4 KB bodies) applied from an editor's replica, \(read.count) (70%) "
        + "marked read in a seeded order; budget \(budgetText), unread kept 7 days (the last 2% of the corpus, which spans 347 days)"
    let evictedText = String(format: "%d bodies evicted (%.1f MB of text)", report.evicted, Double(report.evictedBodyBytes) / 1e6)
    let vacuumed = autoVacuum != 2 && fileAfter < fileBefore  // the file shrank: a VACUUM ran
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
               notes: "p50 of \(fills.count) evicted bodies, each device.fillBodies(editor.articleBodies([id])): the in-process path (digest checked, search index updated)"),
        Figure(id: "budget-fetch-\(label)", name: "7 storage budget \(label): one body back from the server (HTTP)",
               value: httpMillis, unit: "ms", baseline: httpPlainMillis, baselineUnit: "ms",
               baselineDescription: "the same plain SQLite read-and-update as the in-process figure, measured between the requests",
               ratio: httpMillis / httpPlainMillis, ratioNote: "fetch time / plain read-and-update time",
               target: nil, meetsTarget: nil,
               notes: String(format: "p50 of %d evicted bodies (max %.2f ms), each device.fetchBodies([id], using: URLSessionTransport) against the reference server (SQLiteServerStore, %d articles pushed by the editor in %.1f s) in the same process on 127.0.0.1: one POST /v1/articles/bodies, the server's account check and read, JSON both ways, the digest check and the write with its search index update; the connection was opened by one request before",
                             fetched.count, httpP99Millis, corpus.count, pushSeconds)),
    ]
}
