public import Foundation
import GRDB

/// The canonical dump's shape: everything a user can see, nothing replica-local.
struct CanonicalDump: Codable {
    struct DumpArticle: Codable {
        var id, source, title: String
        var body: String?
        var url, byline, publishedAt, updatedAt: String?
        /// Written only when the body is not: its SHA-256.
        var bodySHA256: String?
        var topics, related: [String]
    }
    struct DumpComment: Codable {
        var id, article, author, body, createdAt: String
        var parent, editedAt: String?
        var deleted: Bool
    }
    struct DumpReadState: Codable {
        var account, article: String
        var read: Bool
        var readAt: String?
        var progress: Double
        var saved: Bool
        var savedAt: String?
    }
    var format = "readersync-dump/1"
    var articles: [DumpArticle]
    var comments: [DumpComment]
    var readStates: [DumpReadState]

    // Absent optionals are written as explicit nulls so every row has every key.
    enum CodingKeys: String, CodingKey { case format, articles, comments, readStates }
}

extension CanonicalDump.DumpArticle {
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id); try c.encode(source, forKey: .source); try c.encode(title, forKey: .title)
        try c.encode(body, forKey: .body); try c.encode(url, forKey: .url); try c.encode(byline, forKey: .byline)
        if let bodySHA256 { try c.encode(bodySHA256, forKey: .bodySHA256) }
        try c.encode(publishedAt, forKey: .publishedAt); try c.encode(updatedAt, forKey: .updatedAt)
        try c.encode(topics, forKey: .topics); try c.encode(related, forKey: .related)
    }
}

extension CanonicalDump.DumpComment {
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id); try c.encode(article, forKey: .article); try c.encode(author, forKey: .author)
        try c.encode(body, forKey: .body); try c.encode(createdAt, forKey: .createdAt)
        try c.encode(parent, forKey: .parent); try c.encode(editedAt, forKey: .editedAt)
        try c.encode(deleted, forKey: .deleted)
    }
}

extension CanonicalDump.DumpReadState {
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(account, forKey: .account); try c.encode(article, forKey: .article)
        try c.encode(read, forKey: .read); try c.encode(readAt, forKey: .readAt)
        try c.encode(progress, forKey: .progress); try c.encode(saved, forKey: .saved)
        try c.encode(savedAt, forKey: .savedAt)
    }
}

/// How a canonical dump writes article bodies.
public enum DumpBodies: Sendable, Equatable {
    /// Each held body's text; a body not held as null, with its SHA-256 as `bodySHA256`.
    case text
    /// Every body as null with its SHA-256 as `bodySHA256`: what replicas agree on whichever bodies they hold.
    case digests
}

extension Replica {
    /// The replica's whole user-visible state as canonical JSON: sorted keys, rows sorted by id, dates in
    /// ISO 8601 UTC with milliseconds, and nothing replica-local (no replica id, no sequence numbers).
    ///
    /// Two replicas that have seen the same changes produce byte-identical dumps. Read states that are all
    /// defaults (unread, no progress, not saved) are left out, as a user cannot tell them from none.
    ///
    /// - Parameter account: only this account's read states; nil for every read state held (a device
    ///   holds only its own account's).
    /// - Parameter bodies: ``DumpBodies/text`` writes each held body (and a body not held as null with its
    ///   digest); ``DumpBodies/digests`` writes every body as its digest, so replicas that hold different bodies
    ///   (a storage budget, bodies received by reference) still dump the same bytes when they agree on the rest.
    public func canonicalDump(account: String? = nil, bodies: DumpBodies = .text) throws -> Data {
        var data = Data()
        try writeCanonicalDump(account: account, bodies: bodies) { data.append($0) }
        return data
    }

    /// Writes the canonical dump (see `canonicalDump(account:)`) piece by piece to `sink`, reading rows as it
    /// goes: memory stays flat whatever the replica's size.
    public func writeCanonicalDump(account: String? = nil, bodies: DumpBodies = .text,
                                   to output: (Data) throws -> Void) throws {
        try withoutActuallyEscaping(output) { sink in try writeDump(account: account, bodies: bodies, sink: sink) }
    }

    private func writeDump(account: String?, bodies: DumpBodies, sink: @escaping (Data) throws -> Void) throws {
        let encoder = CanonicalJSON.encoder(pretty: true)
        var buffer = Data()
        func flush(force: Bool = false) throws {
            if force || buffer.count >= 1 << 16 {
                try sink(buffer)
                buffer.removeAll(keepingCapacity: true)
            }
        }
        func emit(_ text: String) { buffer.append(contentsOf: text.utf8) }
        /// One element of a top-level array: its pretty JSON indented by two levels.
        func element(_ value: some Encodable, first: Bool) throws {
            if !first { emit(",\n") }
            let json = try encoder.encode(value)
            var lineStart = true
            for byte in json {
                if lineStart && byte != 0x0A { buffer.append(contentsOf: [0x20, 0x20, 0x20, 0x20]) }
                buffer.append(byte)
                lineStart = byte == 0x0A
            }
            try flush()
        }
        func array(_ name: String, _ body: (_ element: (any Encodable) throws -> Void) throws -> Void) throws {
            emit("  \"\(name)\" : [\n")
            var first = true
            try body { value in
                try element(value, first: first)
                first = false
            }
            emit("\n  ]")
        }
        try read("dump replica") { db in
            emit("{\n")
            try array("articles") { add in
                let rows = try Row.fetchCursor(db, sql: """
                    SELECT \(Article.columns) FROM article a WHERE a.content_hlc IS NOT NULL ORDER BY a.key
                    """)
                while let row = try rows.next() {
                    let a = try Article(row: row)
                    let held = (row[5] as String?) != nil
                    let digest = bodies == .digests || !held
                        ? (row[10] as Data?).map { SHA256.hexString(Array($0)) } : nil
                    try add(CanonicalDump.DumpArticle(
                        id: a.id, source: a.source, title: a.title, body: digest == nil ? a.body : nil, url: a.url,
                        byline: a.byline, publishedAt: a.publishedAt.map(ISO8601.string(from:)),
                        updatedAt: a.updatedAt.map(ISO8601.string(from:)), bodySHA256: digest, topics: a.topics,
                        related: a.related))
                }
            }
            emit(",\n")
            try array("comments") { add in
                let rows = try Row.fetchCursor(db, sql: """
                    SELECT \(Comment.columns) FROM comment c \(Comment.joins) WHERE c.created_hlc IS NOT NULL ORDER BY c.key
                    """)
                while let row = try rows.next() {
                    let c = Comment(row: row)
                    try add(CanonicalDump.DumpComment(
                        id: c.id, article: c.articleID, author: c.author, body: c.body,
                        createdAt: ISO8601.string(from: c.createdAt), parent: c.parentID,
                        editedAt: c.editedAt.map(ISO8601.string(from:)), deleted: c.isDeleted))
                }
            }
            emit(",\n  \"format\" : \"readersync-dump/1\",\n")
            try array("readStates") { add in
                let rows = try Row.fetchCursor(db, sql: """
                    SELECT ac.name, a.key, r.read_at, r.progress, r.saved_at FROM read_state r
                    JOIN account ac ON ac.id = r.account_id JOIN article a ON a.id = r.article_id
                    WHERE (r.read_at IS NOT NULL OR r.progress != 0 OR r.saved_at IS NOT NULL)
                      AND (:account IS NULL OR ac.name = :account)
                    ORDER BY ac.name, a.key
                    """, arguments: ["account": account])
                while let row = try rows.next() {
                    let readAt: Int64? = row[2]
                    let savedAt: Int64? = row[4]
                    try add(CanonicalDump.DumpReadState(
                        account: row[0], article: row[1], read: readAt != nil,
                        readAt: readAt.map { ISO8601.string(fromMillis: $0) }, progress: row[3],
                        saved: savedAt != nil, savedAt: savedAt.map { ISO8601.string(fromMillis: $0) }))
                }
            }
            emit("\n}\n")
            try flush(force: true)
        }
    }
}
