import Foundation
import GRDB

/// What an import did.
public struct ImportSummary: Sendable, Equatable {
    /// Articles read from the file.
    public var articles = 0
    /// Articles new to this replica.
    public var inserted = 0
    /// Articles whose content changed (a correction, or an edit with the same or a newer `updatedAt`).
    public var updated = 0
    /// Articles already held exactly as given: nothing recorded.
    public var unchanged = 0
    /// Articles older than the version held (an earlier `updatedAt`): the newer version held was kept, nothing
    /// recorded (the merge rules would keep it anyway).
    public var keptNewer = 0
    /// Fields of the file that the article model does not hold (not stored).
    public var unknownFields: [ArticleReader.UnknownField] = []
    /// Bytes read.
    public var bytes: Int64 = 0
    /// The file's shape.
    public var shape: ArticleReader.Shape?

    /// Creates an empty summary.
    public init() {}
}

extension Replica {
    /// At most this many articles are recorded per batch inside an import's transaction.
    static let importBatchArticles = 500
    /// A batch is also recorded once its content passes this many bytes.
    static let importBatchBytes = 8 << 20

    /// Imports every article `reader` yields, in **one transaction**: all are recorded, or, on any error (a bad
    /// line, a duplicate id, a full disk), none is and the replica is left as it was.
    ///
    /// Articles are handed to the change log in batches of at most 500 (or 8 MiB) as they are read, so memory
    /// stays bounded whatever the file's size; SQLite spills the open transaction to its write-ahead log. The
    /// transaction holds the replica's write lock until the import ends: other writers wait, up to the busy
    /// timeout.
    ///
    /// Each article costs one indexed lookup of its stored content columns: an unchanged article records nothing, and one
    /// older than the version held (an earlier `updatedAt`) is counted in ``ImportSummary/keptNewer`` and
    /// records nothing. A re-import of unchanged articles therefore writes nothing but a temporary table of the
    /// ids seen (which finds an id given twice, and is dropped at the end).
    ///
    /// - Parameter reader: the articles to import (``ArticleReader`` over a file or data).
    /// - Parameter progress: called every 500 articles and once at the end (phase `.importing`).
    /// - Throws: ``ReaderSyncError/invalidImport(_:)`` naming the line or field at fault (including an id given
    ///   twice); ``ReaderSyncError/storage(_:)``. Nothing is recorded then.
    @discardableResult
    public func importArticles(from reader: ArticleReader, progress: ProgressHandler? = nil) throws -> ImportSummary {
        var summary = ImportSummary()
        var event = ReplicaEvent(changes: [], origin: .local)
        func report(complete: Bool) {
            progress?(OperationProgress(phase: .importing, completed: summary.articles, bytes: reader.bytesRead,
                                        totalBytes: reader.totalBytes, isComplete: complete))
        }
        try write("import articles") { db in
            try db.execute(sql: """
                DROP TABLE IF EXISTS temp.import_seen;
                CREATE TEMP TABLE import_seen (id TEXT PRIMARY KEY, place TEXT NOT NULL) WITHOUT ROWID;
                """)
            let markSeen = try db.cachedStatement(sql: "INSERT INTO temp.import_seen (id, place) VALUES (?, ?) ON CONFLICT DO NOTHING")
            var batch: [ValidArticle] = []
            var batchBytes = 0
            func flush() throws {
                guard !batch.isEmpty else { return }
                var counts = UpsertSummary(inserted: 0, updated: 0, unchanged: 0)
                let writes = try articleWrites(db, batch, summary: &counts)
                summary.inserted += counts.inserted
                summary.updated += counts.updated
                summary.unchanged += counts.unchanged
                summary.keptNewer += counts.keptNewer
                for change in try record(db, writes) { event.record(entity: change.entity, key: change.key) }
                batch.removeAll(keepingCapacity: true)
                batchBytes = 0
            }
            while let article = try reader.next() {
                summary.articles += 1
                if summary.articles % Self.importBatchArticles == 0 {
                    report(complete: false)
                    try Cancellation.check()  // cancelled: the import's transaction rolls back whole
                }
                let valid: ValidArticle
                do {
                    valid = try Self.validated(article, at: reader.place)
                } catch ReaderSyncError.invalidInput(let message) {
                    throw ReaderSyncError.invalidImport(message)
                }
                // The temporary table's TEXT key compares bytes (BINARY), so NFC and NFD ids are two articles here
                // as everywhere else.
                try markSeen.execute(arguments: [article.id, reader.place])
                if db.changesCount == 0 {
                    let first = try String.fetchOne(db, sql: "SELECT place FROM temp.import_seen WHERE id = ?",
                                                    arguments: [article.id]) ?? "an earlier article"
                    throw ReaderSyncError.invalidImport("\(reader.place).id: '\(Keys.printable(article.id))' appears twice (first at \(first))")
                }
                batch.append(valid)
                batchBytes += valid.encoded.utf8.count
                if batch.count >= Self.importBatchArticles || batchBytes >= Self.importBatchBytes { try flush() }
            }
            try flush()
            try db.execute(sql: "DROP TABLE temp.import_seen")
        }
        summary.unknownFields = reader.unknownFields
        summary.bytes = reader.bytesRead
        summary.shape = reader.shape
        report(complete: true)
        observers.send(event)
        return summary
    }
}
