import Foundation
import GRDB

/// One write (or read) transaction's access to the replica's tables: every statement of the merge path, cached
/// by GRDB for the connection, and the caches (origins, accounts) that live as long as the transaction.
///
/// This is the only type that writes the change log, the knowledge, the clock and the materialized rows; local
/// mutations, received bundles, the v1 migration and identity changes all go through it.
final class StoreTransaction {
    let db: Database
    private var originsByRow: [Int64: OriginRef] = [:]
    private var originRows: [BundleOriginInfo: OriginRef] = [:]
    private var accountRows: [ByteString: Int64] = [:]
    private var accountNames: [Int64: String] = [:]

    init(_ db: Database) { self.db = db }

    // MARK: - The replica row

    struct ReplicaRow {
        var origin: OriginRef
        var role: ReplicaRole
        var clock: HLCTimestamp
        var lastSeq: UInt64
    }

    func replicaRow() throws -> ReplicaRow {
        guard let row = try Row.fetchOne(try db.cachedStatement(sql: "SELECT origin_id, role, clock, last_seq FROM replica")) else {
            throw ReaderSyncError.storage("replica row is missing")
        }
        guard let role = ReplicaRole(rawValue: row[1]) else { throw ReaderSyncError.storage("replica row has an unknown role") }
        return ReplicaRow(origin: try origin(row: row[0]), role: role,
                          clock: HLCTimestamp(rawValue: UInt64(bitPattern: row[2])), lastSeq: UInt64(bitPattern: row[3]))
    }

    func setClock(_ clock: HLCTimestamp) throws {
        try db.cachedStatement(sql: "UPDATE replica SET clock = ?").execute(arguments: [Int64(bitPattern: clock.rawValue)])
    }

    func setLastSeq(_ seq: UInt64) throws {
        try db.cachedStatement(sql: "UPDATE replica SET last_seq = ?").execute(arguments: [Int64(bitPattern: seq)])
    }

    // MARK: - Accounts and origins

    /// The row of account `name`, created if `create` and missing.
    func accountRow(_ name: String, create: Bool) throws -> Int64? {
        let key = ByteString(name)
        if let row = accountRows[key] { return row }
        if let row = try Int64.fetchOne(try db.cachedStatement(sql: "SELECT id FROM account WHERE name = ?"), arguments: [name]) {
            accountRows[key] = row
            accountNames[row] = name
            return row
        }
        guard create else { return nil }
        try db.cachedStatement(sql: "INSERT INTO account (name) VALUES (?)").execute(arguments: [name])
        let row = db.lastInsertedRowID
        accountRows[key] = row
        accountNames[row] = name
        return row
    }

    func accountName(row: Int64) throws -> String {
        if let name = accountNames[row] { return name }
        guard let name = try String.fetchOne(try db.cachedStatement(sql: "SELECT name FROM account WHERE id = ?"), arguments: [row]) else {
            throw ReaderSyncError.storage("account row \(row) is missing")
        }
        accountNames[row] = name
        return name
    }

    /// The origin at `row`.
    func origin(row: Int64) throws -> OriginRef {
        if let origin = originsByRow[row] { return origin }
        guard let r = try Row.fetchOne(try db.cachedStatement(sql: """
            SELECT o.replica_id, o.account_id, a.name FROM origin o JOIN account a ON a.id = o.account_id WHERE o.id = ?
            """), arguments: [row]) else {
            throw ReaderSyncError.storage("origin row \(row) is missing")
        }
        let bytes: Data = r[0]
        guard let id = ReplicaID(bytes: bytes) else { throw ReaderSyncError.storage("origin row \(row) holds an invalid replica id") }
        let origin = OriginRef(row: row, replica: id, account: r[2], accountRow: r[1])
        originsByRow[row] = origin
        originRows[BundleOriginInfo(id: id, account: origin.account)] = origin
        return origin
    }

    /// The origin (replica id, account), created if `create` and missing.
    func origin(_ replica: ReplicaID, account: String, create: Bool) throws -> OriginRef? {
        let info = BundleOriginInfo(id: replica, account: account)
        if let origin = originRows[info] { return origin }
        guard let accountRow = try accountRow(account, create: create) else { return nil }
        let blob = Data(replica.bytes)
        if let row = try Int64.fetchOne(try db.cachedStatement(sql: "SELECT id FROM origin WHERE replica_id = ? AND account_id = ?"),
                                        arguments: [blob, accountRow]) {
            return try origin(row: row)
        }
        guard create else { return nil }
        try db.cachedStatement(sql: "INSERT INTO origin (replica_id, account_id) VALUES (?, ?)").execute(arguments: [blob, accountRow])
        let row = db.lastInsertedRowID
        let origin = OriginRef(row: row, replica: replica, account: account, accountRow: accountRow)
        originsByRow[row] = origin
        originRows[info] = origin
        return origin
    }

    func stamp(_ hlc: Int64?, _ origin: Int64?, _ seq: Int64?) throws -> Stamp? {
        guard let hlc, let origin, let seq else { return nil }
        return Stamp(hlc: UInt64(bitPattern: hlc), origin: try self.origin(row: origin), seq: UInt64(bitPattern: seq))
    }

    // MARK: - Knowledge

    /// Knowledge of one origin and scope.
    func knowledge(originRow: Int64, scope: ChangeScope) throws -> Knowledge.Entry {
        guard let row = try Row.fetchOne(try db.cachedStatement(sql: "SELECT seq, incarnation FROM knowledge WHERE origin_id = ? AND scope = ?"),
                                         arguments: [originRow, Int(scope.rawValue)]) else {
            return Knowledge.Entry(seq: 0)
        }
        return Knowledge.Entry(seq: UInt64(bitPattern: row[0]), incarnation: UInt64(bitPattern: row[1]))
    }

    /// Raises knowledge of an origin and scope to `seq` (never lowers it), with the incarnation at `seq`.
    func raiseKnowledge(originRow: Int64, scope: ChangeScope, to seq: UInt64, incarnation: UInt64) throws {
        try db.cachedStatement(sql: """
            INSERT INTO knowledge (origin_id, scope, seq, incarnation) VALUES (?, ?, ?, ?)
            ON CONFLICT (origin_id, scope) DO UPDATE SET seq = excluded.seq, incarnation = excluded.incarnation
            WHERE excluded.seq > knowledge.seq OR (excluded.seq = knowledge.seq AND knowledge.incarnation = 0)
            """).execute(arguments: [originRow, Int(scope.rawValue), Int64(bitPattern: seq), Int64(bitPattern: incarnation)])
    }

    /// Everything held, or with `account` only what replicas of that account may receive: every shared entry,
    /// and private (read state) entries of that account's own replicas.
    func knowledge(visibleTo account: String? = nil) throws -> Knowledge {
        var entries: [Knowledge.Key: Knowledge.Entry] = [:]
        let rows = try Row.fetchCursor(try db.cachedStatement(sql: """
            SELECT o.replica_id, a.name, k.scope, k.seq, k.incarnation
            FROM knowledge k JOIN origin o ON o.id = k.origin_id JOIN account a ON a.id = o.account_id
            """))
        while let row = try rows.next() {
            let blob: Data = row[0]
            guard let origin = ReplicaID(bytes: blob), let scope = ChangeScope(rawValue: UInt8(clamping: row[2] as Int)) else {
                throw ReaderSyncError.storage("knowledge table is corrupt")
            }
            let name: String = row[1]
            if let account, scope == .private, !name.utf8.elementsEqual(account.utf8) { continue }
            entries[Knowledge.Key(origin: origin, account: name, scope: scope)] =
                Knowledge.Entry(seq: UInt64(bitPattern: row[3]), incarnation: UInt64(bitPattern: row[4]))
        }
        return Knowledge(entries: entries)
    }

    // MARK: - Own incarnations

    /// This replica's incarnation in force at `seq` (0 when none is recorded, e.g. before v2).
    func ownIncarnation(at seq: UInt64) throws -> UInt64 {
        let value = try Int64.fetchOne(try db.cachedStatement(sql: """
            SELECT incarnation FROM incarnation WHERE first_seq <= ? ORDER BY first_seq DESC LIMIT 1
            """), arguments: [Int64(bitPattern: seq)])
        return value.map { UInt64(bitPattern: $0) } ?? 0
    }

    /// Records that `incarnation` writes from `firstSeq` on, unless it already is the latest one.
    func useIncarnation(_ incarnation: UInt64, from firstSeq: UInt64) throws {
        let latest = try Int64.fetchOne(try db.cachedStatement(sql: "SELECT incarnation FROM incarnation ORDER BY first_seq DESC LIMIT 1"))
        guard latest.map({ UInt64(bitPattern: $0) }) != incarnation else { return }
        try db.cachedStatement(sql: "INSERT OR REPLACE INTO incarnation (first_seq, incarnation) VALUES (?, ?)")
            .execute(arguments: [Int64(bitPattern: firstSeq), Int64(bitPattern: incarnation)])
    }

    // MARK: - Change log

    /// The `value_type` of an article content kept in the article row.
    static let valueInRow = 6

    func insertChange(origin: Int64, seq: UInt64, hlc: UInt64, entity: EntityKind, target: Int64, field: FieldCode,
                      value: ChangeValue, inRow: Bool = false) throws {
        let statement = try db.cachedStatement(sql: """
            INSERT INTO change_log (origin_id, seq, hlc, entity, target, field, value_type, value) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """)
        do {
            try statement.execute(arguments: [
                origin, Int64(bitPattern: seq), Int64(bitPattern: hlc), Int(entity.rawValue), target, Int(field.rawValue),
                inRow ? Self.valueInRow : value.typeTag, inRow ? DatabaseValue.null : value.databaseValue,
            ])
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
            // Sequence numbers are per origin, across both scopes: two changes with one number are a forged bundle.
            let ref = try self.origin(row: origin)
            throw ReaderSyncError.invalidBundle(
                "two different changes of replica \(ref.replica) (account \(Keys.printable(ref.account))) carry sequence number \(seq); a replica numbers its changes once")
        }
    }

    func deleteChange(origin: Int64, seq: UInt64) throws {
        try db.cachedStatement(sql: "DELETE FROM change_log WHERE origin_id = ? AND seq = ?")
            .execute(arguments: [origin, Int64(bitPattern: seq)])
    }

    /// A retained change read back by its identity (hlc, field, value; an in-row article content as nil).
    func change(origin: Int64, seq: UInt64) throws -> (hlc: UInt64, field: FieldCode, value: ChangeValue?)? {
        guard let row = try Row.fetchOne(try db.cachedStatement(sql: """
            SELECT hlc, field, value_type, value FROM change_log WHERE origin_id = ? AND seq = ?
            """), arguments: [origin, Int64(bitPattern: seq)]) else { return nil }
        guard let field = FieldCode(rawValue: UInt8(clamping: row[1] as Int)) else {
            throw ReaderSyncError.storage("change log holds an unknown field code")
        }
        let type: Int = row[2]
        let value: ChangeValue? = type == Self.valueInRow ? nil : try ChangeValue(typeTag: type, databaseValue: row[3])
        return (UInt64(bitPattern: row[0]), field, value)
    }

    // MARK: - Retained extras

    func extras(entity: EntityKind, target: Int64, accountRow: Int64) throws -> [(origin: Int64, seq: UInt64)] {
        try Row.fetchAll(try db.cachedStatement(sql: """
            SELECT origin_id, seq FROM retained_extra WHERE entity = ? AND target = ? AND account_id = ?
            """), arguments: [Int(entity.rawValue), target, accountRow]).map { ($0[0], UInt64(bitPattern: $0[1])) }
    }

    func replaceExtras(entity: EntityKind, target: Int64, accountRow: Int64, with entries: [(origin: Int64, seq: UInt64)]) throws {
        try db.cachedStatement(sql: "DELETE FROM retained_extra WHERE entity = ? AND target = ? AND account_id = ?")
            .execute(arguments: [Int(entity.rawValue), target, accountRow])
        let insert = try db.cachedStatement(sql: """
            INSERT OR IGNORE INTO retained_extra (entity, target, account_id, origin_id, seq) VALUES (?, ?, ?, ?, ?)
            """)
        for entry in entries {
            try insert.execute(arguments: [Int(entity.rawValue), target, accountRow, entry.origin, Int64(bitPattern: entry.seq)])
        }
    }

    // MARK: - Articles

    /// The row of article `key`, creating a placeholder (no content yet) if `create` and missing.
    func articleRow(key: String, create: Bool) throws -> Int64? {
        if let row = try Int64.fetchOne(try db.cachedStatement(sql: "SELECT id FROM article WHERE key = ?"), arguments: [key]) {
            return row
        }
        guard create else { return nil }
        try db.cachedStatement(sql: "INSERT INTO article (key) VALUES (?)").execute(arguments: [key])
        return db.lastInsertedRowID
    }

    func loadArticle(key: String) throws -> ArticleRecord {
        guard let row = try Row.fetchOne(try db.cachedStatement(sql: """
            SELECT id, updated_at, content_hlc, content_origin, content_seq FROM article WHERE key = ?
            """), arguments: [key]) else { return ArticleRecord() }
        var record = ArticleRecord(row: row[0])
        if let stamp = try stamp(row[2], row[3], row[4]) {
            record.winner = .existing(stamp)
            record.updatedAt = row[1]
        }
        return record
    }

    /// Writes a changed article's winning content and clock; returns its row.
    func saveArticle(key: String, _ record: ArticleRecord) throws -> Int64 {
        guard let winner = record.winner, let content = record.newContent else {
            guard let row = record.row else { throw ReaderSyncError.storage("article \(key) has neither a row nor content") }
            return row
        }
        let digest = Data(content.bodyDigest)
        let arguments: StatementArguments = [
            content.source, content.url, content.title, content.byline,
            Self.jsonArray(content.topics), Self.jsonArray(content.related),
            content.publishedAtMillis, content.updatedAtMillis, content.sortKey,
            Int64(bitPattern: winner.stamp.hlc), winner.stamp.origin.row, Int64(bitPattern: winner.stamp.seq),
        ]
        if let row = record.row {
            try db.cachedStatement(sql: """
                UPDATE article SET source = ?, url = ?, title = ?, byline = ?, topics = ?, related = ?,
                    published_at = ?, updated_at = ?, sort_key = ?, content_hlc = ?, content_origin = ?, content_seq = ?,
                    body = COALESCE(?, CASE WHEN body_sha256 = ? THEN body END), body_sha256 = ?
                WHERE id = ?
                """).execute(arguments: arguments + [content.heldBody, digest, digest, row])
            // A body carried by reference keeps the body the row holds when its digest is the same.
            return row
        }
        try db.cachedStatement(sql: """
            INSERT INTO article (source, url, title, byline, topics, related, published_at, updated_at, sort_key,
                                 content_hlc, content_origin, content_seq, body, body_sha256, key)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: arguments + [content.heldBody, digest, key])
        return db.lastInsertedRowID
    }

    /// The content of a held article, from its row.
    func articleContent(row: Int64) throws -> ArticleContent? {
        guard let r = try Row.fetchOne(try db.cachedStatement(sql: """
            SELECT \(Self.contentColumns) FROM article WHERE id = ? AND content_hlc IS NOT NULL
            """), arguments: [row]) else { return nil }
        return try Self.content(r, offset: 0)
    }

    /// The ten content columns of an article row, in the order ``content(_:offset:)`` reads them.
    static let contentColumns = "source, url, title, byline, body, topics, related, published_at, updated_at, body_sha256"

    /// Content from ten columns starting at `offset`: source, url, title, byline, body, topics, related,
    /// published_at, updated_at, body_sha256. A null body is a body not held: the content carries its digest.
    static func content(_ r: Row, offset o: Int) throws -> ArticleContent {
        var content = ArticleContent(source: r[o], url: r[o + 1], title: r[o + 2], byline: r[o + 3], body: r[o + 4] ?? "",
                                     topics: try stringArray(r[o + 5]), related: try stringArray(r[o + 6]),
                                     publishedAtMillis: r[o + 7], updatedAtMillis: r[o + 8])
        if (r[o + 4] as String?) == nil {
            guard let digest = r[o + 9] as Data?, digest.count == 32 else {
                throw ReaderSyncError.storage("an article row holds neither its body nor the body's digest")
            }
            content.heldBody = nil
            content.bodyReference = Array(digest)
        }
        return content
    }

    /// A string array as the canonical JSON text the row keeps.
    static func jsonArray(_ values: [String]) -> String {
        var bytes: [UInt8] = [0x5B]
        for (i, value) in values.enumerated() {
            if i > 0 { bytes.append(0x2C) }
            CanonicalText.Writer.append(string: value, to: &bytes)
        }
        bytes.append(0x5D)
        return String(decoding: bytes, as: UTF8.self)
    }

    static func stringArray(_ text: String?) throws -> [String] {
        guard let text, !text.isEmpty else { return [] }
        var parser = CanonicalText.Parser(text)
        do { return try parser.strings() } catch { throw ReaderSyncError.storage("an article row holds a malformed list: \(text.prefix(40))") }
    }

    // MARK: - Read states

    func loadReadState(accountRow: Int64, articleRow: Int64) throws -> ReadStateRecord {
        guard let row = try Row.fetchOne(try db.cachedStatement(sql: """
            SELECT read_at, read_hlc, read_origin, read_seq, saved_at, saved_hlc, saved_origin, saved_seq,
                   progress, progress_hlc, progress_origin, progress_seq, reset_hlc, reset_origin, reset_seq, extras
            FROM read_state WHERE account_id = ? AND article_id = ?
            """), arguments: [accountRow, articleRow]) else { return ReadStateRecord() }
        var record = ReadStateRecord(exists: true)
        if let stamp = try stamp(row[1], row[2], row[3]) { record.read = (.existing(stamp), row[0]) }
        if let stamp = try stamp(row[5], row[6], row[7]) { record.saved = (.existing(stamp), row[4]) }
        if let stamp = try stamp(row[9], row[10], row[11]) { record.frontier = [(.existing(stamp), row[8])] }
        if let stamp = try stamp(row[12], row[13], row[14]) { record.reset = .existing(stamp) }
        record.storedExtras = row[15]
        record.extrasLoaded = record.storedExtras == 0
        return record
    }

    /// Loads the progress positions kept beyond the first (the frontier's further entries).
    func loadFrontierExtras(_ record: inout ReadStateRecord, accountRow: Int64, articleRow: Int64) throws {
        guard !record.extrasLoaded else { return }
        for entry in try extras(entity: .readState, target: articleRow, accountRow: accountRow) {
            guard let change = try change(origin: entry.origin, seq: entry.seq), case .double(let value)? = change.value else {
                throw ReaderSyncError.storage("a retained progress position is missing from the change log")
            }
            let held = Held.existing(Stamp(hlc: change.hlc, origin: try origin(row: entry.origin), seq: entry.seq))
            record.frontier.append((held, value))
        }
        record.frontier.sort { $0.held.stamp.precedes($1.held.stamp) }
        record.extrasLoaded = true
    }

    func saveReadState(accountRow: Int64, articleRow: Int64, _ record: ReadStateRecord) throws {
        func clock(_ held: Held?) -> [(any DatabaseValueConvertible)?] {
            guard let held else { return [nil, nil, nil] }
            return [Int64(bitPattern: held.stamp.hlc), held.stamp.origin.row, Int64(bitPattern: held.stamp.seq)]
        }
        let first = record.frontier.first
        var values: [(any DatabaseValueConvertible)?] = [record.read?.value]
        values += clock(record.read?.held)
        values.append(record.saved?.value)
        values += clock(record.saved?.held)
        values.append(first?.value ?? 0)
        values += clock(first?.held)
        values += clock(record.reset)
        // The stored extras stay as they are unless the frontier was loaded whole.
        values.append(record.extrasLoaded ? max(0, record.frontier.count - 1) : record.storedExtras)
        values += [accountRow, articleRow]
        if record.exists {
            try db.cachedStatement(sql: """
                UPDATE read_state SET read_at = ?, read_hlc = ?, read_origin = ?, read_seq = ?,
                    saved_at = ?, saved_hlc = ?, saved_origin = ?, saved_seq = ?,
                    progress = ?, progress_hlc = ?, progress_origin = ?, progress_seq = ?,
                    reset_hlc = ?, reset_origin = ?, reset_seq = ?, extras = ?
                WHERE account_id = ? AND article_id = ?
                """).execute(arguments: StatementArguments(values))
        } else {
            try db.cachedStatement(sql: """
                INSERT INTO read_state (read_at, read_hlc, read_origin, read_seq, saved_at, saved_hlc, saved_origin, saved_seq,
                    progress, progress_hlc, progress_origin, progress_seq, reset_hlc, reset_origin, reset_seq, extras,
                    account_id, article_id)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: StatementArguments(values))
        }
        if record.extrasLoaded && record.frontierChanged && (record.storedExtras > 0 || record.frontier.count > 1) {
            try replaceExtras(entity: .readState, target: articleRow, accountRow: accountRow,
                              with: record.frontier.dropFirst().map { ($0.held.stamp.origin.row, $0.held.stamp.seq) })
        }
    }

    // MARK: - Comments

    func commentRow(key: String) throws -> (row: Int64, extras: Int)? {
        guard let row = try Row.fetchOne(try db.cachedStatement(sql: "SELECT id, extras FROM comment WHERE key = ?"), arguments: [key]) else {
            return nil
        }
        return (row[0], row[1])
    }

    func loadComment(key: String) throws -> CommentRecord {
        guard let row = try Row.fetchOne(try db.cachedStatement(sql: """
            SELECT c.id, c.created_hlc, c.created_origin, c.created_seq, c.body_hlc, c.body_origin, c.body_seq, c.body,
                   c.deleted_hlc, c.deleted_origin, c.deleted_seq, a.key, c.parent_key
            FROM comment c LEFT JOIN article a ON a.id = c.article_id WHERE c.key = ?
            """), arguments: [key]) else { return CommentRecord() }
        var record = CommentRecord(row: row[0])
        if let stamp = try stamp(row[1], row[2], row[3]) {
            let articleKey: String? = row[11]
            record.creation = (.existing(stamp), CommentCreation(article: articleKey ?? "", parent: row[12]))
        }
        if let stamp = try stamp(row[4], row[5], row[6]) { record.body = (.existing(stamp), row[7]) }
        if let stamp = try stamp(row[8], row[9], row[10]) { record.deleted = .existing(stamp) }
        return record
    }

    /// The columns of a comment row that show it.
    struct CommentView {
        var articleKey: String?
        var parentKey: String?
        var author: String?
        var body: String
        var created: (hlc: UInt64, origin: Int64?, seq: UInt64?)?
        var edited: (hlc: UInt64, origin: Int64?, seq: UInt64?)?
        var deleted: (hlc: UInt64, origin: Int64?, seq: UInt64?)?
        var extras: Int
    }

    /// Writes a comment row; returns its row.
    func saveComment(key: String, row existing: Int64?, _ view: CommentView) throws -> Int64 {
        var articleRow: Int64?
        if let key = view.articleKey { articleRow = try self.articleRow(key: key, create: true) }
        var authorRow: Int64?
        if let author = view.author { authorRow = try accountRow(author, create: true) }
        func clock(_ c: (hlc: UInt64, origin: Int64?, seq: UInt64?)?) -> [(any DatabaseValueConvertible)?] {
            guard let c else { return [nil, nil, nil] }
            return [Int64(bitPattern: c.hlc), c.origin, c.seq.map { Int64(bitPattern: $0) }]
        }
        var values: [(any DatabaseValueConvertible)?] = [articleRow, view.parentKey, authorRow, view.body]
        values += clock(view.created) + clock(view.edited) + clock(view.deleted)
        values.append(view.extras)
        if let existing {
            try db.cachedStatement(sql: """
                UPDATE comment SET article_id = ?, parent_key = ?, author_id = ?, body = ?,
                    created_hlc = ?, created_origin = ?, created_seq = ?, body_hlc = ?, body_origin = ?, body_seq = ?,
                    deleted_hlc = ?, deleted_origin = ?, deleted_seq = ?, extras = ?
                WHERE id = ?
                """).execute(arguments: StatementArguments(values + [existing]))
            return existing
        }
        try db.cachedStatement(sql: """
            INSERT INTO comment (article_id, parent_key, author_id, body, created_hlc, created_origin, created_seq,
                body_hlc, body_origin, body_seq, deleted_hlc, deleted_origin, deleted_seq, extras, key)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: StatementArguments(values + [key]))
        return db.lastInsertedRowID
    }
}

// MARK: - Value storage

extension ChangeValue {
    /// The `value_type` column: 0 null, 1 false, 2 true, 3 int, 4 double, 5 string (as in bundles); 6 is an
    /// article content kept in its row.
    var typeTag: Int {
        switch self {
        case .null: return 0
        case .bool(let b): return b ? 2 : 1
        case .int: return 3
        case .double: return 4
        case .string: return 5
        }
    }

    var databaseValue: DatabaseValue {
        switch self {
        case .null: return .null
        case .bool(let b): return (b ? 1 : 0).databaseValue
        case .int(let i): return i.databaseValue
        case .double(let d): return d.databaseValue
        case .string(let s): return s.databaseValue
        }
    }

    init(typeTag: Int, databaseValue: DatabaseValue) throws {
        switch (typeTag, databaseValue.storage) {
        case (0, _): self = .null
        case (1, _): self = .bool(false)
        case (2, _): self = .bool(true)
        case (3, .int64(let i)): self = .int(i)
        case (4, .double(let d)): self = .double(d)
        case (4, .int64(let i)): self = .double(Double(i))
        case (5, .string(let s)): self = .string(s)
        default:
            throw ReaderSyncError.storage("change log holds a value of type \(typeTag) that does not match its column")
        }
    }
}
