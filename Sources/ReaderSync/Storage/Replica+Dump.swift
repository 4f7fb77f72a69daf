public import Foundation
import GRDB

/// The canonical dump's shape: everything a user can see, nothing replica-local.
struct CanonicalDump: Codable {
    struct DumpArticle: Codable {
        var id, source, title, body: String
        var url, byline, publishedAt, updatedAt: String?
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

extension Replica {
    /// The replica's whole user-visible state as canonical JSON: sorted keys, rows sorted by id, dates in
    /// ISO 8601 UTC with milliseconds, and nothing replica-local (no replica id, no sequence numbers).
    ///
    /// Two replicas that have seen the same changes produce byte-identical dumps. Read states that are all
    /// defaults (unread, no progress, not saved) are left out, as a user cannot tell them from none.
    ///
    /// - Parameter account: only this account's read states; nil for every read state held (a device
    ///   holds only its own account's).
    public func canonicalDump(account: String? = nil) throws -> Data {
        let dump = try read("dump replica") { db -> CanonicalDump in
            let articles = try Row.fetchAll(db, sql: "SELECT id, content FROM article ORDER BY id").map { row in
                let a = try Article(row: row)
                return CanonicalDump.DumpArticle(
                    id: a.id, source: a.source, title: a.title, body: a.body, url: a.url, byline: a.byline,
                    publishedAt: a.publishedAt.map(ISO8601.string(from:)),
                    updatedAt: a.updatedAt.map(ISO8601.string(from:)), topics: a.topics, related: a.related)
            }
            let comments = try Row.fetchAll(db, sql: "SELECT * FROM comment ORDER BY id").map { row in
                let c = Comment(row: row)
                return CanonicalDump.DumpComment(
                    id: c.id, article: c.articleID, author: c.author, body: c.body,
                    createdAt: ISO8601.string(from: c.createdAt), parent: c.parentID,
                    editedAt: c.editedAt.map(ISO8601.string(from:)), deleted: c.isDeleted)
            }
            let readStates = try Row.fetchAll(db, sql: """
                SELECT * FROM read_state
                WHERE (read_at IS NOT NULL OR progress != 0 OR saved_at IS NOT NULL)
                  AND (:account IS NULL OR account = :account)
                ORDER BY account, article_id
                """, arguments: ["account": account]).map { row in
                let readAt: Int64? = row["read_at"]
                let savedAt: Int64? = row["saved_at"]
                return CanonicalDump.DumpReadState(
                    account: row["account"], article: row["article_id"], read: readAt != nil,
                    readAt: readAt.map { ISO8601.string(fromMillis: $0) }, progress: row["progress"],
                    saved: savedAt != nil, savedAt: savedAt.map { ISO8601.string(fromMillis: $0) })
            }
            return CanonicalDump(articles: articles, comments: comments, readStates: readStates)
        }
        var data = try CanonicalJSON.encoder(pretty: true).encode(dump)
        data.append(0x0A)
        return data
    }
}
