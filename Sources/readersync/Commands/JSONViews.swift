import Foundation
import ReaderSync

/// The `--json` shape of a feed row.
struct FeedItemJSON: Encodable {
    var article: Article
    var readState: ReadState
    var commentCount: Int
    init(_ item: FeedItem) {
        article = item.article
        readState = item.readState
        commentCount = item.commentCount
    }
}

/// The `--json` shape of a comment with its replies.
struct CommentThreadJSON: Encodable {
    var comment: Comment
    var replies: [CommentThreadJSON]
    init(_ thread: CommentThread) {
        comment = thread.comment
        replies = thread.replies.map(CommentThreadJSON.init)
    }
}

/// The `--json` shape of `show`.
struct ArticleDetailJSON: Encodable {
    var article: Article
    var readState: ReadState
    var comments: [CommentThreadJSON]
    init(_ detail: ArticleDetail) {
        article = detail.article
        readState = detail.readState
        comments = detail.comments.map(CommentThreadJSON.init)
    }
}
