import Foundation
import GRDB

/// What an article import or upsert did.
public struct UpsertSummary: Sendable, Equatable {
    /// Articles that were new to this replica.
    public var inserted: Int
    /// Articles whose content changed.
    public var updated: Int
    /// Articles that were already held exactly as given (nothing recorded).
    public var unchanged: Int
}

extension Replica {
    // MARK: - Read state

    /// Marks an article read (now).
    /// - Throws: ``ReaderSyncError/notFound(_:)`` for an unknown article.
    public func markRead(_ articleID: String) throws {
        try mutate("mark \(articleID) read") { db in
            try requireArticle(db, articleID)
            let now = options.wallClock.nowMillis()
            return [FieldWrite(entity: .readState, key: articleID, field: ChangeField.read, value: .int(now))]
        }
    }

    /// Marks an article unread; this also resets its reading progress.
    /// - Throws: ``ReaderSyncError/notFound(_:)`` for an unknown article.
    public func markUnread(_ articleID: String) throws {
        try mutate("mark \(articleID) unread") { db in
            try requireArticle(db, articleID)
            return [
                FieldWrite(entity: .readState, key: articleID, field: ChangeField.read, value: .null),
                FieldWrite(entity: .readState, key: articleID, field: ChangeField.progress, value: .null),
            ]
        }
    }

    /// Records how far the reader got in an article, from 0 to 1.
    /// - Throws: ``ReaderSyncError/invalidInput(_:)`` outside 0…1, ``ReaderSyncError/notFound(_:)``.
    public func setProgress(_ articleID: String, _ fraction: Double) throws {
        guard fraction.isFinite, (0...1).contains(fraction) else {
            throw ReaderSyncError.invalidInput("progress must be between 0 and 1, got \(fraction)")
        }
        try mutate("set progress of \(articleID)") { db in
            try requireArticle(db, articleID)
            return [FieldWrite(entity: .readState, key: articleID, field: ChangeField.progress, value: .double(fraction))]
        }
    }

    /// Saves an article for later.
    /// - Throws: ``ReaderSyncError/notFound(_:)`` for an unknown article.
    public func save(_ articleID: String) throws {
        try mutate("save \(articleID)") { db in
            try requireArticle(db, articleID)
            return [FieldWrite(entity: .readState, key: articleID, field: ChangeField.saved,
                               value: .int(options.wallClock.nowMillis()))]
        }
    }

    /// Removes an article from the saved list.
    /// - Throws: ``ReaderSyncError/notFound(_:)`` for an unknown article.
    public func unsave(_ articleID: String) throws {
        try mutate("unsave \(articleID)") { db in
            try requireArticle(db, articleID)
            return [FieldWrite(entity: .readState, key: articleID, field: ChangeField.saved, value: .null)]
        }
    }

    // MARK: - Comments

    /// The longest comment accepted, in characters.
    public static let maxCommentLength = 10_000

    /// Adds a comment to an article, or a reply to one of its comments, as this replica's account.
    /// - Returns: the new comment.
    /// - Throws: ``ReaderSyncError/invalidInput(_:)`` for empty text, ``ReaderSyncError/notFound(_:)``.
    @discardableResult
    public func addComment(to articleID: String, body: String, replyTo parentID: String? = nil) throws -> Comment {
        let text = try Self.validCommentBody(body)
        let id = options.makeID()
        try mutate("add comment to \(articleID)") { db in
            try requireArticle(db, articleID)
            if let parentID {
                let parent = try requireComment(db, parentID)
                guard parent.articleID == articleID else {
                    throw ReaderSyncError.invalidInput("comment \(parentID) belongs to article \(parent.articleID), not \(articleID)")
                }
                guard !parent.isDeleted else {
                    throw ReaderSyncError.invalidInput("comment \(parentID) was deleted; it cannot be replied to")
                }
            }
            guard try Comment.exists(db, id: id) == false else {
                throw ReaderSyncError.invalidInput("comment id \(id) is already taken")
            }
            let created = try CommentCreation(article: articleID, parent: parentID).encoded()
            return [
                FieldWrite(entity: .comment, key: id, field: ChangeField.commentCreated, value: .string(created)),
                FieldWrite(entity: .comment, key: id, field: ChangeField.commentBody, value: .string(text)),
            ]
        }
        return try read("read comment") { db in try requireComment(db, id) }
    }

    /// Replaces the text of one of this account's comments.
    /// - Throws: ``ReaderSyncError/forbidden(_:)`` for someone else's comment, ``ReaderSyncError/notFound(_:)``.
    public func editComment(_ commentID: String, body: String) throws {
        let text = try Self.validCommentBody(body)
        try mutate("edit comment \(commentID)") { db in
            let comment = try requireOwnComment(db, commentID)
            guard !comment.isDeleted else {
                throw ReaderSyncError.invalidInput("comment \(commentID) was deleted; it cannot be edited")
            }
            return [FieldWrite(entity: .comment, key: commentID, field: ChangeField.commentBody, value: .string(text))]
        }
    }

    /// Deletes one of this account's comments; its replies stay. Deleting a deleted comment does nothing.
    /// - Throws: ``ReaderSyncError/forbidden(_:)`` for someone else's comment, ``ReaderSyncError/notFound(_:)``.
    public func deleteComment(_ commentID: String) throws {
        try mutate("delete comment \(commentID)") { db in
            let comment = try requireOwnComment(db, commentID)
            if comment.isDeleted { return [] }
            return [FieldWrite(entity: .comment, key: commentID, field: ChangeField.commentDeleted, value: .bool(true))]
        }
    }

    static func validCommentBody(_ body: String) throws -> String {
        let text = body.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { throw ReaderSyncError.invalidInput("a comment cannot be empty") }
        guard text.count <= maxCommentLength else {
            throw ReaderSyncError.invalidInput("a comment may have at most \(maxCommentLength) characters, this one has \(text.count)")
        }
        return text
    }

    // MARK: - Articles

    /// Inserts or updates articles, all in one transaction: either all are recorded or none.
    ///
    /// An article already held with exactly this content records nothing, so importing a file twice is free.
    /// - Throws: ``ReaderSyncError/invalidInput(_:)`` naming the first invalid article; nothing is written then.
    @discardableResult
    public func upsertArticles(_ articles: [Article]) throws -> UpsertSummary {
        var seen = Set<String>()
        for (index, article) in articles.enumerated() {
            try Self.validate(article, at: "article \(index + 1) (\(article.id))")
            guard seen.insert(article.id).inserted else {
                throw ReaderSyncError.invalidInput("article \(index + 1): id \(article.id) appears twice")
            }
        }
        var summary = UpsertSummary(inserted: 0, updated: 0, unchanged: 0)
        try mutate("upsert articles") { db in
            var writes: [FieldWrite] = []
            for article in articles {
                let content = try ArticleContent(article).encoded()
                let current = try String.fetchOne(db, sql: "SELECT content FROM article WHERE id = ?", arguments: [article.id])
                if current == content { summary.unchanged += 1; continue }
                if current == nil { summary.inserted += 1 } else { summary.updated += 1 }
                writes.append(FieldWrite(entity: .article, key: article.id, field: ChangeField.articleContent,
                                         value: .string(content)))
            }
            return writes
        }
        return summary
    }

    static func validate(_ article: Article, at place: String) throws {
        func require(_ ok: Bool, _ message: String) throws {
            if !ok { throw ReaderSyncError.invalidInput("\(place): \(message)") }
        }
        try require(!article.id.trimmingCharacters(in: .whitespaces).isEmpty, "id is empty")
        try require(article.id.count <= 512, "id is longer than 512 characters")
        try require(!article.title.trimmingCharacters(in: .whitespaces).isEmpty, "title is empty")
        try require(!article.source.trimmingCharacters(in: .whitespaces).isEmpty, "source is empty")
        try require(article.body.utf8.count <= 4 << 20, "body is larger than 4 MiB")
    }

    // MARK: - Plumbing

    /// Runs one mutation: `body` checks preconditions and returns the writes; they are recorded with their
    /// change-log entries in the same transaction, and observers are told after the commit.
    func mutate(_ what: String, _ body: (Database) throws -> [FieldWrite]) throws {
        let changes = try write(what) { db in try record(db, try body(db)) }
        observers.send(ReplicaEvent(changes: changes, origin: .local))
    }

    func requireArticle(_ db: Database, _ id: String) throws {
        guard try Bool.fetchOne(db, sql: "SELECT 1 FROM article WHERE id = ?", arguments: [id]) == true else {
            throw ReaderSyncError.notFound("no article with id '\(id)'")
        }
    }

    func requireComment(_ db: Database, _ id: String) throws -> Comment {
        guard let comment = try Comment.fetch(db, id: id) else {
            throw ReaderSyncError.notFound("no comment with id '\(id)'")
        }
        return comment
    }

    private func requireOwnComment(_ db: Database, _ id: String) throws -> Comment {
        let comment = try requireComment(db, id)
        guard comment.author == account else {
            throw ReaderSyncError.forbidden("comment \(id) was written by \(comment.author); only its author can change it")
        }
        return comment
    }
}

extension ReplicaEvent {
    init(changes: [Change], origin: Origin) {
        self.origin = origin
        articleIDs = []
        commentIDs = []
        readStateArticleIDs = []
        for change in changes { record(change) }
    }

    mutating func record(_ change: Change) {
        if isTruncated { return }
        if articleIDs.count + commentIDs.count + readStateArticleIDs.count >= Self.maxListedIDs {
            isTruncated = true
            return
        }
        switch change.entity {
        case .article: articleIDs.insert(change.key)
        case .comment: commentIDs.insert(change.key)
        case .readState: readStateArticleIDs.insert(change.key)
        }
    }
}
