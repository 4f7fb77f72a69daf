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
    /// Articles given in an older version than the one held (an earlier `updatedAt`): the held version stays and
    /// nothing is recorded.
    public var keptNewer: Int = 0
}

extension Replica {
    // MARK: - Read state

    /// Marks an article read (now).
    /// - Throws: ``ReaderSyncError/notFound(_:)`` for an unknown article.
    public func markRead(_ articleID: String) throws {
        try mutate("mark \(articleID) read") { db in
            try requireArticle(db, articleID)
            let now = max(0, options.wallClock.nowMillis())
            try BodyStore.noteOpened(db, key: articleID, at: now)
            return [FieldWrite(entity: .readState, key: articleID, field: .read, value: .int(now))]
        }
    }

    /// Marks an article unread; this also resets its reading progress.
    /// - Throws: ``ReaderSyncError/notFound(_:)`` for an unknown article.
    public func markUnread(_ articleID: String) throws {
        try mutate("mark \(articleID) unread") { db in
            try requireArticle(db, articleID)
            return [
                FieldWrite(entity: .readState, key: articleID, field: .read, value: .null),
                FieldWrite(entity: .readState, key: articleID, field: .progress, value: .null),
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
            try BodyStore.noteOpened(db, key: articleID, at: options.wallClock.nowMillis())
            return [FieldWrite(entity: .readState, key: articleID, field: .progress, value: .double(fraction))]
        }
    }

    /// Saves an article for later.
    /// - Throws: ``ReaderSyncError/notFound(_:)`` for an unknown article.
    public func save(_ articleID: String) throws {
        try mutate("save \(articleID)") { db in
            try requireArticle(db, articleID)
            return [FieldWrite(entity: .readState, key: articleID, field: .saved,
                               value: .int(max(0, options.wallClock.nowMillis())))]
        }
    }

    /// Removes an article from the saved list.
    /// - Throws: ``ReaderSyncError/notFound(_:)`` for an unknown article.
    public func unsave(_ articleID: String) throws {
        try mutate("unsave \(articleID)") { db in
            try requireArticle(db, articleID)
            return [FieldWrite(entity: .readState, key: articleID, field: .saved, value: .null)]
        }
    }

    // MARK: - Comments

    /// The longest comment accepted, in characters (Unicode scalars).
    public static let maxCommentLength = ChangeRules.maxCommentScalars

    /// Adds a comment to an article, or a reply to one of its comments, as this replica's account.
    /// - Returns: the new comment.
    /// - Throws: ``ReaderSyncError/invalidInput(_:)`` for empty text, ``ReaderSyncError/notFound(_:)``.
    @discardableResult
    public func addComment(to articleID: String, body: String, replyTo parentID: String? = nil) throws -> Comment {
        let text = try Self.validCommentBody(body)
        // Ids are bound to this replica's account, so no other account can ever claim them.
        let id = "\(account):\(options.makeID())"
        if let problem = Keys.problem(withID: id) {
            throw ReaderSyncError.invalidInput("the new comment id '\(Keys.printable(id))' \(problem)")
        }
        try mutate("add comment to \(articleID)") { db in
            try requireArticle(db, articleID)
            if let parentID {
                let parent = try requireComment(db, parentID)
                guard parent.articleID.utf8.elementsEqual(articleID.utf8) else {
                    throw ReaderSyncError.invalidInput("comment \(parentID) belongs to article \(parent.articleID), not \(articleID)")
                }
                guard !parent.isDeleted else {
                    throw ReaderSyncError.invalidInput("comment \(parentID) was deleted; it cannot be replied to")
                }
            }
            guard try Comment.exists(db, id: id) == false else {
                throw ReaderSyncError.invalidInput("comment id \(id) is already taken")
            }
            let created = CommentCreation(article: articleID, parent: parentID).encoded()
            return [
                FieldWrite(entity: .comment, key: id, field: .created, value: .string(created)),
                FieldWrite(entity: .comment, key: id, field: .body, value: .string(text)),
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
            return [FieldWrite(entity: .comment, key: commentID, field: .body, value: .string(text))]
        }
    }

    /// Deletes one of this account's comments; its replies stay. Deleting a deleted comment does nothing.
    /// - Throws: ``ReaderSyncError/forbidden(_:)`` for someone else's comment, ``ReaderSyncError/notFound(_:)``.
    public func deleteComment(_ commentID: String) throws {
        try mutate("delete comment \(commentID)") { db in
            let comment = try requireOwnComment(db, commentID)
            if comment.isDeleted { return [] }
            return [FieldWrite(entity: .comment, key: commentID, field: .deleted, value: .bool(true))]
        }
    }

    static func validCommentBody(_ body: String) throws -> String {
        let text = body.trimmingCharacters(in: .whitespacesAndNewlines)
        if let problem = ChangeRules.commentTextProblem(text) {
            throw ReaderSyncError.invalidInput("a comment \(problem == "is empty" ? "cannot be empty" : problem)")
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
        var seen = Set<ByteString>()
        var contents: [ValidArticle] = []
        contents.reserveCapacity(articles.count)
        for (index, article) in articles.enumerated() {
            let valid = try Self.validated(article, at: "article \(index + 1) (\(Keys.printable(article.id)))")
            guard seen.insert(ByteString(article.id)).inserted else {
                throw ReaderSyncError.invalidInput("article \(index + 1): id \(Keys.printable(article.id)) appears twice")
            }
            contents.append(valid)
        }
        var summary = UpsertSummary(inserted: 0, updated: 0, unchanged: 0)
        try mutate("upsert articles") { db in
            summary = UpsertSummary(inserted: 0, updated: 0, unchanged: 0)
            return try articleWrites(db, contents, summary: &summary)
        }
        return summary
    }

    /// The writes that bring `contents` into the store, counting what each does; an article held exactly as
    /// given, or held in a newer version, records nothing.
    func articleWrites(_ db: Database, _ contents: [ValidArticle],
                       summary: inout UpsertSummary) throws -> [FieldWrite] {
        var writes: [FieldWrite] = []
        let lookup = try db.cachedStatement(sql: """
            SELECT \(StoreTransaction.contentColumns), id FROM article WHERE key = ? AND content_hlc IS NOT NULL
            """)
        for (id, content, encoded) in contents {
            if let row = try Row.fetchOne(lookup, arguments: [id]) {
                let held = try StoreTransaction.content(row, offset: 0)
                if held == content { summary.unchanged += 1; continue }
                if held.heldBody == nil, held.matches(content) {
                    // The same version, whose body this replica had evicted: the import brings the body back,
                    // which is not a change (nothing to record, nothing to send).
                    try BodyStore.fill(db, articleRow: row[10], body: content.body)
                    summary.unchanged += 1
                    continue
                }
                if (content.updatedAtMillis ?? Int64.min) < (held.updatedAtMillis ?? Int64.min) {
                    summary.keptNewer += 1
                    continue
                }
                summary.updated += 1
            } else {
                summary.inserted += 1
            }
            writes.append(FieldWrite(entity: .article, key: id, field: .content, value: .string(encoded),
                                     parsed: .content(content)))
        }
        return writes
    }

    /// Checks an article against the rules for ids and content (`Schemas/merge-rules.md`, "Values"), on the
    /// size it will have in a bundle.
    static func validate(_ article: Article, at place: String) throws {
        _ = try validated(article, at: place)
    }

    /// An article checked against the rules, with its content and the content's canonical JSON (encoded once).
    typealias ValidArticle = (id: String, content: ArticleContent, encoded: String)

    /// Checks an article (see ``validate(_:at:)``) and returns its content and canonical JSON.
    static func validated(_ article: Article, at place: String) throws -> ValidArticle {
        if let problem = Keys.problem(withID: article.id) {
            throw ReaderSyncError.invalidInput("\(place): id \(problem)")
        }
        let content = ArticleContent(article)
        // Every field's own limit first (cheap, and bounds what is encoded), then the encoded size.
        if let problem = content.problem(encodedBytes: 0) {
            throw ReaderSyncError.invalidInput("\(place): \(problem)")
        }
        let encoded = content.encoded()
        if encoded.utf8.count > ArticleContent.Limit.encoded {
            throw ReaderSyncError.invalidInput(
                "\(place): its canonical JSON is \(encoded.utf8.count) bytes (limit \(ArticleContent.Limit.encoded))")
        }
        return (article.id, content, encoded)
    }

    // MARK: - Plumbing

    /// Runs one mutation: `body` checks preconditions and returns the writes; they are recorded with their
    /// change-log entries in the same transaction, and observers are told after the commit.
    func mutate(_ what: String, _ body: (Database) throws -> [FieldWrite]) throws {
        let changes = try write(what) { db in try record(db, try body(db)) }
        observers.send(ReplicaEvent(changes: changes, origin: .local))
    }

    func requireArticle(_ db: Database, _ id: String) throws {
        // Cached: every read-state mutation asks this, and preparing it each time was a fifth of markRead (perf).
        let statement = try db.cachedStatement(sql: "SELECT 1 FROM article WHERE key = ? AND content_hlc IS NOT NULL")
        guard try Bool.fetchOne(statement, arguments: [id]) == true else {
            throw ReaderSyncError.notFound("no article with id '\(Keys.printable(id))'")
        }
    }

    func requireComment(_ db: Database, _ id: String) throws -> Comment {
        guard let comment = try Comment.fetch(db, id: id) else {
            throw ReaderSyncError.notFound("no comment with id '\(Keys.printable(id))'")
        }
        return comment
    }

    private func requireOwnComment(_ db: Database, _ id: String) throws -> Comment {
        let comment = try requireComment(db, id)
        guard comment.author.utf8.elementsEqual(account.utf8) else {
            throw ReaderSyncError.forbidden("comment \(id) was written by \(comment.author); only its author can change it")
        }
        return comment
    }
}
