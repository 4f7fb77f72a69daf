import Foundation
import ReaderSync
import Synchronization
import Testing

/// The library calls the CLI is built on (added for it, to be carried onto the new store): the streaming reader,
/// the one-transaction import, feed pages and progress callbacks, called directly on in-memory replicas.
@Suite("ReaderSync: the CLI's library calls")
struct LibraryAPITests {
    private func article(_ id: String, day: Int? = nil) -> String {
        let date = day.map { String(format: #","publishedAt":"2025-07-%02dT10:00:00Z""#, $0) } ?? ""
        return #"{"id":"\#(id)","source":"Wire","title":"T \#(id)","body":"B"\#(date)}"#
    }

    @Test("ArticleReader reads the three shapes and says which, where each article was, and what it left out")
    func readerShapes() throws {
        let lines = ArticleReader(data: Data((article("a") + "\n\n" + article("b").dropLast() + #","extra":1}"#).utf8))
        var places: [String] = []
        while let next = try lines.next() { places.append("\(lines.place)=\(next.id)") }
        #expect(places == ["line 1=a", "line 3=b"])
        #expect(lines.shape == .jsonLines)
        #expect(lines.unknownFields.map { "\($0.name) \($0.articles) \($0.firstPlace)" } == ["extra 1 line 3.extra"])

        let page = ArticleReader(data: Data(#"{"meta": {"x": [1, 2]}, "articles": [\#(article("p")), \#(article("q"))], "more": null}"#.utf8))
        #expect(try page.next()?.id == "p" && page.place == "articles[0]")
        #expect(try page.next()?.id == "q" && page.place == "articles[1]")
        #expect(try page.next() == nil)
        #expect(page.shape == .page)
        #expect(page.bytesRead == page.totalBytes)

        let array = ArticleReader(data: Data("[\(article("x"))]".utf8))
        #expect(try array.next()?.id == "x" && array.place == "[0]" && array.shape == .array)

        let strict = ArticleReader(data: Data((article("s").dropLast() + #","lang":"en"}"#).utf8), rejectsUnknownFields: true)
        #expect(throws: ReaderSyncError.self) { try strict.next() }
    }

    @Test("importArticles is one transaction: a bad article late in the file leaves the replica as it was")
    func importAllOrNothing() throws {
        let replica = try Replica.inMemory(account: "alice")
        let text = (0..<1200).map { article("a\($0)") }.joined(separator: "\n") + "\n{\"id\": \"bad\"}\n"
        #expect(throws: ReaderSyncError.self) { try replica.importArticles(from: ArticleReader(data: Data(text.utf8))) }
        #expect(try replica.status().articles == 0)
        #expect(try replica.status().logEntries == 0)

        let reports = Mutex<[OperationProgress]>([])
        let good = (0..<1200).map { article("a\($0)") }.joined(separator: "\n")
        let summary = try replica.importArticles(from: ArticleReader(data: Data(good.utf8))) { step in
            reports.withLock { $0.append(step) }
        }
        #expect(summary.inserted == 1200 && summary.articles == 1200 && summary.shape == .jsonLines)
        let steps = reports.withLock { $0 }
        #expect(steps.map(\.completed) == [500, 1000, 1200])
        #expect(steps.last?.isComplete == true && steps.last?.bytes == Int64(good.utf8.count))
        let again = try replica.importArticles(from: ArticleReader(data: Data(good.utf8)))
        #expect(again.unchanged == 1200 && again.inserted == 0)
    }

    @Test("feedPage walks the same order as feed, a cursor's text round-trips, and bodies can be left out")
    func feedPages() throws {
        let replica = try Replica.inMemory(account: "alice")
        let text = (0..<37).map { article("f\($0)", day: $0 % 5 == 0 ? nil : 1 + $0 % 9) }.joined(separator: "\n")
        try replica.importArticles(from: ArticleReader(data: Data(text.utf8)))
        let whole = try replica.feed().map(\.article.id)
        var walked: [String] = []
        var cursor: FeedCursor?
        repeat {
            let page = try replica.feedPage(after: cursor, limit: 10, includeBodies: false)
            #expect(page.items.allSatisfy { $0.article.body.isEmpty })
            walked += page.items.map(\.article.id)
            cursor = try page.next.map { try #require(FeedCursor($0.description)) }
        } while cursor != nil
        #expect(walked == whole)
        #expect(FeedCursor("f1.not-base64!") == nil && FeedCursor("42") == nil)
        #expect(try replica.feedPage(FeedQuery(source: "WIRE"), limit: 100).items.count == 37)
        #expect(throws: ReaderSyncError.self) { try replica.feedPage(limit: 0) }
    }

    @Test("sync(with:progress:) reports export and apply for each direction")
    func syncProgress() throws {
        let phone = try Replica.inMemory(account: "alice")
        let laptop = try Replica.inMemory(account: "alice")
        try phone.importArticles(from: ArticleReader(data: Data(article("s").utf8)))
        let reports = Mutex<[OperationProgress]>([])
        try phone.sync(with: laptop) { step in reports.withLock { $0.append(step) } }
        let done = reports.withLock { $0 }.filter(\.isComplete).map { "\($0.direction?.rawValue ?? "-") \($0.phase.rawValue) \($0.completed)" }
        #expect(done == ["sending exporting 1", "sending applying 1", "receiving exporting 0", "receiving applying 0"])
    }
}
