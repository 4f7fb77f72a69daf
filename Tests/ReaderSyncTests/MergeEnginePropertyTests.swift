import Foundation
import GRDB
import PropertyBased
import Testing
@testable import ReaderSync

/// The batched merge path (``Merger`` over the SQLite store, with ``MergeEngine``'s incremental rules) against the
/// reference rules (``MergeRules``), side by side on the same random histories: whatever the arrival order and
/// however the changes are cut into batches, the store must hold the reference's state, and retain exactly the
/// changes the reference does not supersede.
@Suite("Merge engine: the batched path agrees with the reference rules")
struct MergeEnginePropertyTests {
    typealias P = MergeRulePropertyTests

    /// Feeds `entries` (one target's history) to a fresh replica's merge path in batches cut at `cuts`, and returns
    /// the replica with the (origin, seq) pairs it retains.
    static func runBatched(_ entries: [MergeEntry], entity: EntityKind, key: String, cuts: [Int],
                           readerAccount: String = "alice") throws -> (Replica, Set<String>) {
        let replica = try Replica.inMemory(account: readerAccount, role: .server)
        var start = 0
        for cut in (cuts.map { min(max($0, 0), entries.count) }.sorted() + [entries.count]) where cut >= start {
            let batch = Array(entries[start..<cut])
            start = cut
            guard !batch.isEmpty else { continue }
            try replica.write("merge batch") { db in
                let tx = StoreTransaction(db)
                var keys = BundleKeyTable()
                let keyID = keys.intern(key).id
                var incoming: [IncomingChange] = []
                for entry in batch {
                    guard let origin = try tx.origin(entry.origin, account: entry.originAccount, create: true),
                          let field = FieldCode(name: entry.field, entity: entity) else { continue }
                    let parsed = try ChangeRules.check(entity: entity, field: field, key: key, value: entry.value)
                    incoming.append(IncomingChange(origin: origin, seq: entry.seq, hlc: entry.hlc.rawValue, entity: entity,
                                                   field: field, keyID: keyID, value: entry.value, parsed: parsed))
                }
                _ = try Merger(tx).merge(incoming, keys: keys)
                for origin in Set(incoming.map(\.origin.row)) {
                    let top = incoming.filter { $0.origin.row == origin }.map(\.seq).max() ?? 0
                    try tx.raiseKnowledge(originRow: origin, scope: entity.scope, to: top, incarnation: 0)
                }
                try replica.checkInvariants(db)
            }
        }
        let retained = try replica.read("retained") { db in
            let tx = StoreTransaction(db)
            return Set(try Row.fetchAll(db, sql: "SELECT origin_id, seq FROM change_log").map { row -> String in
                let origin = try tx.origin(row: row[0])
                return "\(origin.replica)/\(origin.account)/\(row[1] as Int64)"
            })
        }
        return (replica, retained)
    }

    static func reference(_ entries: [MergeEntry], superseded: [Int64]) -> Set<String> {
        let dropped = Set(superseded)
        return Set(entries.filter { !dropped.contains($0.localSeq) }.map { "\($0.origin)/\($0.originAccount)/\($0.seq)" })
    }

    /// Read-state entries with realistic values (times, progress 0…1, resets).
    static func readStateField(kind: Int, value: Int) -> (String, ChangeValue) {
        switch kind {
        case 0: return (ChangeField.read, .int(1_751_500_000_000 + Int64(value)))
        case 1: return (ChangeField.read, .null)
        case 2: return (ChangeField.progress, .double(Double(value) / 10))
        case 3: return (ChangeField.progress, .null)
        default: return (ChangeField.saved, value % 2 == 0 ? .null : .int(1_751_500_000_000 + Int64(value)))
        }
    }

    @Test func readStateAgrees() async throws {
        await propertyCheck(count: 300, input: P.codes, P.cuts, P.order) { codes, cuts, order in
            let all = P.entries(codes, field: Self.readStateField)
            let arrival = P.permuted(all, by: order)
            let (state, superseded) = MergeRules.readState(all)
            guard let (replica, retained) = try? Self.runBatched(arrival, entity: .readState, key: "a", cuts: cuts) else {
                Issue.record("the batched path failed")
                return
            }
            let held = try? replica.readState(of: "a")
            #expect(held?.readAt.map(ISO8601.millis(from:)) == state?.readAt)
            #expect(held?.savedAt.map(ISO8601.millis(from:)) == state?.savedAt)
            #expect(held?.progress == state?.progress ?? 0)
            #expect(retained == Self.reference(all, superseded: superseded))
        }
    }

    @Test func articleAgrees() async throws {
        await propertyCheck(count: 200, input: P.codes, P.cuts, P.order) { codes, cuts, order in
            let all = P.entries(codes) { kind, value in
                let content = ArticleContent(Article(id: "a", source: "S", title: "v\(value)", body: "b",
                                                     updatedAt: kind == 4 ? nil : Date(timeIntervalSince1970: Double(kind))))
                return (ChangeField.articleContent, .string(content.encoded()))
            }
            let arrival = P.permuted(all, by: order)
            let (content, superseded) = MergeRules.article(all)
            guard let (replica, retained) = try? Self.runBatched(arrival, entity: .article, key: "a", cuts: cuts) else {
                Issue.record("the batched path failed")
                return
            }
            #expect((try? replica.article("a").article) == content?.article(id: "a"))
            #expect(retained == Self.reference(all, superseded: superseded))
        }
    }

    @Test func commentAgrees() async throws {
        let created = CommentCreation(article: "a", parent: nil).encoded()
        await propertyCheck(count: 300, input: P.codes, P.cuts, P.order) { codes, cuts, order in
            // Devices 0 and 1 are alice's; device 2 is mallory, trying to create, edit and delete it too.
            var all = P.entries(codes, field: { kind, value in
                switch kind {
                case 0, 1, 2: return (ChangeField.commentBody, .string("text \(value)"))
                case 3: return (ChangeField.commentDeleted, .bool(true))
                default: return (ChangeField.commentCreated, .string(created))
                }
            }, accounts: ["alice", "alice", "mallory"])
            all.insert(MergeEntry(localSeq: 0, origin: P.origins[0], originAccount: "alice", seq: 0,
                                  hlc: HLCTimestamp(millis: 999, counter: 0), field: ChangeField.commentCreated,
                                  value: .string(created)), at: 0)
            let arrival = P.permuted(all, by: order)
            for id in ["c-1", "alice:c-1", "mallory:c-1"] {
                let (state, superseded) = MergeRules.comment(all, commentID: id)
                guard let (replica, retained) = try? Self.runBatched(arrival, entity: .comment, key: id, cuts: cuts) else {
                    Issue.record("the batched path failed for \(id)")
                    return
                }
                let held = try? replica.comment(id)
                #expect(held?.author == state?.author)
                #expect(held?.body == state?.body)
                #expect(held?.isDeleted == state?.isDeleted)
                #expect(held?.createdAt == state?.createdHLC.date)
                #expect(held?.editedAt == state?.editedHLC?.date)
                #expect(retained == Self.reference(all, superseded: superseded), "comment \(id)")
            }
        }
    }
}
