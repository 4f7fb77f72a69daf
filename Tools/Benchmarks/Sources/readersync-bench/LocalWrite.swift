// 1. Local write: `markRead` (the read mark, its change-log entry and the clock, in one transaction) against the
// same UPDATE alone on a plain GRDB table, each op in its own transaction. Blocks of ops alternate between the two,
// so that both see the same disk and the same neighbours.
import Foundation
import GRDB
import ReaderSync

func benchLocalWrite(_ options: Options) throws -> [Figure] {
    let n = options.quick ? 300 : 2_000
    var figures: [Figure] = []
    for onDisk in [true, false] {
        let count = onDisk ? n : n * 5
        let warmup = 50
        let dir = try TempDir("local")
        defer { dir.cleanUp() }
        let replica = try onDisk ? Replica.create(at: dir.path("replica.db"), account: "alice")
            : Replica.inMemory(account: "alice")
        var ids: [String] = []
        var batch: [Article] = []
        for index in 0..<(count + warmup) {
            batch.append(Articles.make(index, seed: options.seed, bodyBytes: 2_048...4_096))
            ids.append(batch.last!.id)
            if batch.count == 1_000 { try replica.upsertArticles(batch); batch = [] }
        }
        if !batch.isEmpty { try replica.upsertArticles(batch) }

        let plain: any DatabaseWriter = try onDisk ? DatabasePool(path: dir.path("plain.db")) as any DatabaseWriter : DatabaseQueue()
        try plain.write { db in
            try db.execute(sql: "CREATE TABLE read_state (article TEXT PRIMARY KEY, read_at INTEGER) WITHOUT ROWID")
            let insert = try db.makeStatement(sql: "INSERT INTO read_state (article) VALUES (?)")
            for id in ids { try insert.execute(arguments: [id]) }
        }
        func plainUpdate(_ id: String) throws {
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            try plain.write { db in
                try db.cachedStatement(sql: "UPDATE read_state SET read_at = ? WHERE article = ?").execute(arguments: [now, id])
            }
        }
        for id in ids.suffix(warmup) {
            try replica.markRead(id)
            try plainUpdate(id)
        }
        var replicaSeconds = 0.0
        var plainSeconds = 0.0
        let block = 50
        for start in stride(from: 0, to: count, by: block) {
            let slice = ids[start..<min(count, start + block)]
            replicaSeconds += try measure { for id in slice { try replica.markRead(id) } }
            plainSeconds += try measure { for id in slice { try plainUpdate(id) } }
        }
        let replicaMicros = replicaSeconds / Double(count) * 1e6
        let plainMicros = plainSeconds / Double(count) * 1e6
        let ratio = replicaMicros / plainMicros
        figures.append(Figure(
            id: onDisk ? "local-write" : "local-write-memory",
            name: onDisk ? "1 local write: markRead (file, WAL)" : "1b local write: markRead (in memory)",
            value: replicaMicros, unit: "us/op", baseline: plainMicros, baselineUnit: "us/op",
            baselineDescription: "the same UPDATE (read_at of one row by text key) alone on a plain GRDB table, own transaction each, "
                + (onDisk ? "file DB in WAL mode with SQLite's default synchronous" : "in-memory DB") + "; \(count) ops interleaved in blocks of \(block)",
            ratio: ratio, ratioNote: "replica us/op / plain us/op",
            target: onDisk ? "ratio <= 1.5" : "(informational: CPU cost without fsync)",
            meetsTarget: onDisk ? ratio <= 1.5 : nil,
            notes: nil))
        say("local write \(onDisk ? "file" : "memory"): " + String(format: "%.1f us/op vs %.1f us/op", replicaMicros, plainMicros))
    }
    return figures
}
