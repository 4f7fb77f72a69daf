public import Foundation

/// A news article, as published by its source.
///
/// Articles are shared: every replica of every account holds the same articles.
/// A newer ``updatedAt`` (a publisher's correction) wins over an older version everywhere.
public struct Article: Codable, Sendable, Equatable, Hashable, Identifiable {
    /// The article's id, stable across replicas (for example a slug of its title).
    public var id: String
    /// The publisher's name, for example "Associated Press".
    public var source: String
    /// Where the article lives on the web, if known.
    public var url: String?
    /// The headline.
    public var title: String
    /// The author line, if any.
    public var byline: String?
    /// The text, paragraphs separated by a blank line.
    public var body: String
    /// Topics the article belongs to.
    public var topics: [String]
    /// Ids of related articles (possibly from other sources).
    public var related: [String]
    /// When the source published it, if known.
    public var publishedAt: Date?
    /// When the source last changed it, if known; a newer value wins in merges.
    public var updatedAt: Date?

    /// Creates an article.
    public init(
        id: String, source: String, url: String? = nil, title: String, byline: String? = nil,
        body: String, topics: [String] = [], related: [String] = [],
        publishedAt: Date? = nil, updatedAt: Date? = nil
    ) {
        self.id = id
        self.source = source
        self.url = url
        self.title = title
        self.byline = byline
        self.body = body
        self.topics = topics
        self.related = related
        self.publishedAt = publishedAt
        self.updatedAt = updatedAt
    }
}

/// Per-account reading state of one article: read or unread, reading progress, saved.
///
/// Read state is private: it is only ever exchanged between replicas of the same account.
public struct ReadState: Codable, Sendable, Equatable, Hashable {
    /// The account this state belongs to.
    public var account: String
    /// The article it describes.
    public var articleID: String
    /// When the article was marked read, or nil while it is unread.
    public var readAt: Date?
    /// How far the reader got, from 0 (start) to 1 (end).
    public var progress: Double
    /// When the article was saved, or nil if it is not saved.
    public var savedAt: Date?

    /// Whether the article is marked read.
    public var isRead: Bool { readAt != nil }
    /// Whether the article is saved for later.
    public var isSaved: Bool { savedAt != nil }

    /// Creates a read state.
    public init(account: String, articleID: String, readAt: Date? = nil, progress: Double = 0, savedAt: Date? = nil) {
        self.account = account
        self.articleID = articleID
        self.readAt = readAt
        self.progress = progress
        self.savedAt = savedAt
    }

    /// The state of an article nobody has touched yet.
    public static func initial(account: String, articleID: String) -> ReadState {
        ReadState(account: account, articleID: articleID)
    }
}

/// A comment on an article, or a reply to another comment.
///
/// Comments are shared with every account. Only the author may edit or delete one;
/// a deleted comment stays deleted and loses its text.
public struct Comment: Codable, Sendable, Equatable, Hashable, Identifiable {
    /// The comment's id (a lowercase UUID string made by the replica that wrote it).
    public var id: String
    /// The article it belongs to.
    public var articleID: String
    /// The comment this one replies to, if any.
    public var parentID: String?
    /// The account name of its author.
    public var author: String
    /// The text; empty once deleted.
    public var body: String
    /// When it was written (from the writer's hybrid logical clock).
    public var createdAt: Date
    /// When its text was last edited, if ever.
    public var editedAt: Date?
    /// Whether it was deleted.
    public var isDeleted: Bool

    /// Creates a comment value.
    public init(id: String, articleID: String, parentID: String? = nil, author: String, body: String,
                createdAt: Date, editedAt: Date? = nil, isDeleted: Bool = false) {
        self.id = id
        self.articleID = articleID
        self.parentID = parentID
        self.author = author
        self.body = body
        self.createdAt = createdAt
        self.editedAt = editedAt
        self.isDeleted = isDeleted
    }
}

/// A comment with its replies, in thread order.
public struct CommentThread: Sendable, Equatable, Identifiable {
    /// The comment's id.
    public var id: String { comment.id }
    /// The comment itself.
    public var comment: Comment
    /// Its direct replies, oldest first, each with their own replies.
    public var replies: [CommentThread]

    /// Creates a thread node.
    public init(comment: Comment, replies: [CommentThread] = []) {
        self.comment = comment
        self.replies = replies
    }
}

/// One row of the feed: an article and this account's read state of it.
public struct FeedItem: Sendable, Equatable, Identifiable {
    /// The article's id.
    public var id: String { article.id }
    /// The article.
    public var article: Article
    /// This replica's account's read state of the article.
    public var readState: ReadState
    /// How many visible (not deleted) comments it has.
    public var commentCount: Int
}

/// An article with everything a reader screen shows: read state and comment thread.
public struct ArticleDetail: Sendable, Equatable {
    /// The article.
    public var article: Article
    /// This replica's account's read state of it.
    public var readState: ReadState
    /// Top-level comments, oldest first, each with its replies.
    public var comments: [CommentThread]
    /// Whether this replica holds the body (``Article/body`` is empty when it does not).
    public var bodyState: BodyState = .held
}

/// Which articles the feed shows.
public struct FeedQuery: Sendable, Equatable {
    /// Only articles not marked read.
    public var unreadOnly: Bool
    /// Only saved articles.
    public var savedOnly: Bool
    /// Only articles from this source (exact name).
    public var source: String?
    /// Only articles with this topic.
    public var topic: String?
    /// At most this many rows.
    public var limit: Int?

    /// Creates a feed query; the default shows every article, newest first.
    public init(unreadOnly: Bool = false, savedOnly: Bool = false, source: String? = nil,
                topic: String? = nil, limit: Int? = nil) {
        self.unreadOnly = unreadOnly
        self.savedOnly = savedOnly
        self.source = source
        self.topic = topic
        self.limit = limit
    }
}
