import Foundation
import GRDB
import Testing
@testable import ReaderSync

@Suite("Search")
struct SearchTests {
    /// The captured page's articles plus a few that make ranking visible.
    func replica() throws -> Replica {
        let replica = try Replica.inMemory(account: "alice")
        try replica.upsertArticles(try fixtureArticles())
        try replica.upsertArticles([
            Article(id: "title-hit", source: "Wire", title: "Pentagon budget hearing", body: "Lawmakers met on Tuesday."),
            Article(id: "body-hit", source: "Wire", title: "Lawmakers meet", body: "The hearing covered the pentagon and more."),
            Article(id: "accents", source: "Le Monde", title: "Le résumé de l'été", body: "Une saison à Zürich."),
        ])
        return replica
    }

    @Test("accents and case are folded: kremlin finds Kremlin, pentagon finds Pentagon's, resume finds résumé")
    func folding() throws {
        let r = try replica()
        #expect(try r.search("kremlin").contains { $0.id == mainArticle })
        #expect(try r.search("KREMLIN").contains { $0.id == mainArticle })
        #expect(try r.search("resume").map(\.id) == ["accents"])
        #expect(try r.search("zurich").map(\.id) == ["accents"])
        // "Pentagon's" in the captured page tokenizes to "pentagon" and "s".
        let pentagon = try r.search("pentagon").map(\.id)
        #expect(pentagon.contains("title-hit") && pentagon.contains("body-hit"))
    }

    @Test("a title match ranks above a body-only match, and the snippet marks the term")
    func ranking() throws {
        let r = try replica()
        let hits = try r.search("pentagon", options: SearchOptions(highlight: ("<b>", "</b>")))
        let title = try #require(hits.firstIndex { $0.id == "title-hit" })
        let body = try #require(hits.firstIndex { $0.id == "body-hit" })
        #expect(title < body)
        #expect(hits[title].score > hits[body].score)
        #expect(hits[title].snippet.contains("<b>Pentagon</b>"))
        #expect(hits[body].snippet.contains("<b>pentagon</b>"))
    }

    @Test("phrases, prefixes, AND, OR, NOT and parentheses")
    func syntax() throws {
        let r = try replica()
        #expect(try r.search("\"budget hearing\"").map(\.id) == ["title-hit"])
        #expect(try r.search("\"hearing budget\"").isEmpty)
        #expect(try r.search("pentag*").count >= 2)
        #expect(try r.search("pentagon NOT budget").contains { $0.id == "body-hit" })
        #expect(try !r.search("pentagon NOT budget").contains { $0.id == "title-hit" })
        let either = Set(try r.search("résumé OR budget").map(\.id))
        #expect(either.isSuperset(of: ["accents", "title-hit"]) && !either.contains("body-hit"))
        #expect(try r.search("(résumé OR budget) hearing").map(\.id) == ["title-hit"])
        #expect(try r.search("lawmakers AND tuesday").map(\.id) == ["title-hit"])
        // Lowercase operators are words; FTS5 syntax characters are just text.
        #expect(try r.search("zurich or").isEmpty)
        #expect(try r.search("title:pentagon").isEmpty)
    }

    @Test("malformed queries get one line naming the problem, never an SQLite message",
          arguments: [
            ("", "empty"), ("   ", "empty"), ("\"open phrase", "never closed"), ("(kremlin", "never closed"),
            ("kremlin)", "no matching"), ("OR kremlin", "needs a term before"), ("kremlin NOT", "needs a term after"),
            ("kremlin AND OR putin", "put a term between"), ("()", "empty"), ("!!!", "no letters or digits"),
            ("pen*tagon", "goes at the end"), ("\"\"", "no letters or digits"),
          ])
    func malformed(query: String, expected: String) throws {
        let r = try replica()
        do {
            _ = try r.search(query)
            Issue.record("'\(query)' was accepted")
        } catch let error as ReaderSyncError {
            guard case .invalidInput(let message) = error else { Issue.record("wrong case: \(error)"); return }
            #expect(message.hasPrefix("invalid search query: "))
            #expect(message.contains(expected), "\(message)")
            #expect(!message.lowercased().contains("fts5") && !message.lowercased().contains("sqlite"))
            #expect(!message.contains("\n"))
        }
    }

    @Test("hits carry the account's read state; --unread, --saved and --source filter")
    func filters() throws {
        let r = try replica()
        try r.markRead("title-hit")
        try r.save("body-hit")
        let hits = try r.search("pentagon")
        #expect(hits.first { $0.id == "title-hit" }?.readState.isRead == true)
        #expect(hits.first { $0.id == "body-hit" }?.readState.isSaved == true)
        #expect(try !r.search("pentagon", options: SearchOptions(unreadOnly: true)).contains { $0.id == "title-hit" })
        #expect(try r.search("pentagon", options: SearchOptions(savedOnly: true)).map(\.id) == ["body-hit"])
        #expect(try r.search("pentagon", options: SearchOptions(source: "Wire")).count == 2)
        #expect(try r.search("pentagon", options: SearchOptions(limit: 1)).count == 1)
        #expect(throws: ReaderSyncError.self) { try r.search("pentagon", options: SearchOptions(limit: 0)) }
    }

    @Test("the index follows merged bundles and updated versions")
    func afterSync() throws {
        let a = try replica()
        let b = try Replica.inMemory(account: "bob")
        #expect(try b.search("kremlin").isEmpty)
        try sync(a, b)
        #expect(try b.search("kremlin").contains { $0.id == mainArticle })
        // A correction replaces the indexed text everywhere.
        try a.upsertArticles([Article(id: "title-hit", source: "Wire", title: "Filibuster hearing", body: "Lawmakers met.",
                                      updatedAt: Date(timeIntervalSince1970: 1_900_000_000))])
        try sync(a, b)
        #expect(try !b.search("budget").contains { $0.id == "title-hit" })
        #expect(try b.search("filibuster").map(\.id) == ["title-hit"])
    }

    @Test("an evicted body is not searched, but its article is still found by title and says so")
    func afterEviction() throws {
        // A device that got the articles from a peer (bodies it wrote itself stay until acknowledged).
        let peer = try replica()
        let r = try Replica.inMemory(account: "alice")
        try sync(peer, r)
        try r.markRead("body-hit")
        #expect(try r.evictBody(of: "body-hit"))
        #expect(try !r.search("covered").contains { $0.id == "body-hit" })
        let hit = try #require(try r.search("lawmakers meet").first { $0.id == "body-hit" })
        #expect(hit.bodyState == .evicted)
        // Back from a peer that holds it: searchable again.
        #expect(try r.fillBodies(from: peer).filled == 1)
        #expect(try r.search("covered").map(\.id) == ["body-hit"])
    }

    @Test("the index is in step with the article rows (FTS5 integrity-check)")
    func integrity() throws {
        let peer = try replica()
        let r = try Replica.inMemory(account: "alice")
        try sync(peer, r)
        try r.markRead(mainArticle)
        #expect(try r.evictBody(of: mainArticle))
        try r.database.write { db in
            try db.execute(sql: "INSERT INTO article_search (article_search, rank) VALUES ('integrity-check', 1)")
        }
        #expect(try r.fillBodies(from: peer).filled == 1)
        try r.database.write { db in
            try db.execute(sql: "INSERT INTO article_search (article_search, rank) VALUES ('integrity-check', 1)")
        }
    }
}

/// Hands out a peer replica's bodies as a server would (`POST /v1/articles/bodies`); nothing else.
struct BodiesOnlyTransport: SyncTransport {
    let peer: Replica
    func account() async throws -> RemoteAccount { throw ReaderSyncError.transport("not a server") }
    func knowledge() async throws -> Knowledge { throw ReaderSyncError.transport("not a server") }
    func push(_ bundle: Data) async throws -> PushResponse { throw ReaderSyncError.transport("not a server") }
    func pull(knowledge: Knowledge, maxChanges: Int?) async throws -> PullPage { throw ReaderSyncError.transport("not a server") }
    func fetchBodies(_ ids: [String]) async throws -> ArticleBodiesAnswer {
        let bodies = try peer.articleBodies(ids)
        return ArticleBodiesAnswer(bodies: bodies, missing: ids.filter { id in !bodies.contains { $0.id == id } }, truncated: [])
    }
}

@Suite("README: search and the storage budget")
struct ReadmeSearchExampleTests {
    @Test("the README's search and budget example runs as written")
    func example() async throws {
        let server = try Replica.inMemory(account: "server", role: .server)
        try await server.upsertArticles(try fixtureArticles())
        let phone = try Replica.inMemory(account: "alice")
        try sync(server, phone)
        try await phone.markRead(mainArticle)
        let transport = BodiesOnlyTransport(peer: server)

        // --- README example ---
        for hit in try await phone.search("kremlin talks", options: SearchOptions(unreadOnly: true, limit: 20)) {
            print(hit.title, hit.snippet, hit.readState.isRead, hit.bodyState)
        }
        try await phone.setStorageBudget(StorageBudget(bytes: try StorageBudget.parseSize("50MB"), keepUnreadFor: 7 * 86_400))
        let report = try await phone.enforceStorageBudget()
        print("evicted \(report.evicted) bodies: \(report.bytesBefore) -> \(report.bytesAfter) bytes")
        // --- end (the budget is generous: nothing is evicted; evict one by hand to show the way back) ---
        #expect(report.evicted == 0 && !report.stillOverBudget)
        await #expect(try phone.evictBody(of: mainArticle))
        if try await phone.article(mainArticle).bodyState != .held {
            try await phone.fetchBodies([mainArticle], using: transport)
        }
        await #expect(try phone.article(mainArticle).bodyState == .held)
        await #expect(try phone.canonicalDump(account: "nobody") == server.canonicalDump(account: "nobody"))
    }
}
