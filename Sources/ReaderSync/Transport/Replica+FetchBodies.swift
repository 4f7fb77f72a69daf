import Foundation
import GRDB

extension Replica {
    /// Brings back, from a server, bodies this replica lacks (evicted to stay within its storage budget, or
    /// received by reference from a peer that had evicted them).
    ///
    /// Asks `POST /v1/articles/bodies` in requests of at most `ArticleBodiesRequest/maxIDs` ids, asking again
    /// for the ids a server leaves out of a full answer (``ArticleBodiesAnswer/truncated``). Every body goes
    /// through ``fillBodies(_:)-13je5``: one whose SHA-256 is not the digest this replica holds for the article is
    /// refused and counted in ``BodyFillReport/rejected`` (a stale or forged body never replaces the text), and so
    /// is a body for an id that was not asked. Putting a body back is not a change: no change-log entry, no
    /// knowledge moves, nothing is pushed. Each request's bodies are stored as they arrive, so after a failure or a
    /// cancellation (checked between requests) calling again continues with what is still lacking.
    ///
    /// - Parameters:
    ///   - ids: the articles whose bodies to fetch; ids this replica does not know, or whose body it holds, are
    ///     not asked for. nil (the default) fetches every body lacking (``articlesWithoutBody(limit:)-7kj4q``).
    ///   - transport: the server.
    /// - Returns: bodies put back (`filled`), refused (`rejected`), and asked for but held by the server neither
    ///   (`missing`).
    /// - Throws: ``ReaderSyncError/transport(_:)`` for the network or the server (a transport that cannot fetch
    ///   bodies, a server that answers nothing it was asked), `CancellationError` when the task is cancelled.
    @discardableResult
    public func fetchBodies(_ ids: [String]? = nil, using transport: any SyncTransport) async throws -> BodyFillReport {
        var report = BodyFillReport()
        let chunkSize = ArticleBodiesRequest.maxIDs
        if let ids {
            let lacking = try await offload { try self.withoutBody(ids) }
            for start in stride(from: 0, to: lacking.count, by: chunkSize) {
                try Task.checkCancellation()
                try await fetchBodies(chunk: Array(lacking[start..<min(start + chunkSize, lacking.count)]),
                                      using: transport, into: &report)
            }
        } else {
            // Pages by key: a body the server does not hold stays lacking, and is not asked twice.
            var after = ""
            while true {
                try Task.checkCancellation()
                let from = after
                let chunk = try await offload { try self.articlesWithoutBody(after: from, limit: chunkSize) }
                guard let last = chunk.last else { break }
                after = last
                try await fetchBodies(chunk: chunk, using: transport, into: &report)
            }
        }
        return report
    }

    /// The ids of `ids` (repeats dropped) that name an article this replica holds without its body, in order.
    private func withoutBody(_ ids: [String]) throws -> [String] {
        try read("list articles without body") { db in
            let lookup = try db.cachedStatement(sql: """
                SELECT 1 FROM article WHERE key = ? AND body IS NULL AND content_hlc IS NOT NULL
                """)
            var seen = Set<ByteString>()
            var out: [String] = []
            for id in ids where seen.insert(ByteString(id)).inserted {
                if try Bool.fetchOne(lookup, arguments: [id]) == true { out.append(id) }
            }
            return out
        }
    }

    /// Asks for the bodies of `chunk` (at most ``ArticleBodiesRequest/maxIDs`` distinct ids), then for the ones a
    /// full answer left out, until each id is answered, missing or refused.
    private func fetchBodies(chunk: [String], using transport: any SyncTransport,
                             into report: inout BodyFillReport) async throws {
        var pending = chunk
        while !pending.isEmpty {
            let answer = try await transport.fetchBodies(pending)
            let asked = Set(pending.map(ByteString.init))
            var answered = Set<ByteString>()
            var offered: [ArticleBody] = []
            var stray: [String] = []
            for body in answer.bodies {
                let key = ByteString(body.id)
                if asked.contains(key) && answered.insert(key).inserted {
                    offered.append(body)
                } else {
                    stray.append(body.id)  // not asked, or sent twice: nothing of it is stored
                }
            }
            let filled = try await fillBodies(offered)
            report.filled += filled.filled
            report.rejected += filled.rejected + stray.count
            for id in filled.rejectedIDs + stray where report.rejectedIDs.count < 20 { report.rejectedIDs.append(id) }

            let truncated = Set(answer.truncated.map(ByteString.init))
            let next = pending.filter { id in
                let key = ByteString(id)
                return truncated.contains(key) && !answered.contains(key)
            }
            // Asked, neither answered nor left for later: the server holds no body for it.
            report.missing += pending.count - answered.count - next.count
            guard next.count < pending.count else {
                throw ReaderSyncError.transport(
                    "the server answered none of the \(pending.count) bodies asked and left them all for later; stopping")
            }
            pending = next
            if !pending.isEmpty { try Task.checkCancellation() }
        }
    }
}
