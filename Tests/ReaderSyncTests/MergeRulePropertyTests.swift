import Foundation
import PropertyBased
import Testing
@testable import ReaderSync

/// Properties of the pure merge rules, checked on generated histories of writes to one target (PropertyBased
/// shrinks a failing history to a minimal one and prints the seed that replays it).
///
/// For every history, whatever the order the writes arrive in and wherever a replica compacts, the state must
/// equal the state computed from all writes at once. This is the property that makes immediate compaction safe.
@Suite("Merge rules: order-insensitive, and compaction never changes the outcome")
struct MergeRulePropertyTests {
    static let origins = [
        ReplicaID(bytes: [UInt8](repeating: 1, count: 16)),
        ReplicaID(bytes: [UInt8](repeating: 2, count: 16)),
        ReplicaID(bytes: [UInt8](repeating: 3, count: 16)),
    ].compactMap { $0 }

    /// One generated write, decoded from an integer so that shrinking composes: device, kind, value, time step.
    static func entries(_ codes: [Int], field: (Int, Int) -> (String, ChangeValue), accounts: [String] = ["alice", "alice", "alice"]) -> [MergeEntry] {
        var seqs = [UInt64](repeating: 0, count: 3)
        var time: UInt64 = 1_000
        return codes.enumerated().map { index, code in
            let device = code % 3
            let kind = (code / 3) % 5
            let value = (code / 15) % 11
            time += UInt64((code / 165) % 3)           // 0: same millisecond as the previous write
            seqs[device] += 1
            let (name, v) = field(kind, value)
            return MergeEntry(localSeq: Int64(index + 1), origin: origins[device], originAccount: accounts[device],
                              seq: seqs[device], hlc: HLCTimestamp(millis: time, counter: UInt16(index % 2)),
                              field: name, value: v)
        }
    }

    static func readStateField(kind: Int, value: Int) -> (String, ChangeValue) {
        switch kind {
        case 0: return (ChangeField.read, .int(Int64(value)))
        case 1: return (ChangeField.read, .null)
        case 2: return (ChangeField.progress, .double(Double(value) / 10))
        case 3: return (ChangeField.progress, .null)
        default: return (ChangeField.saved, value % 2 == 0 ? .null : .int(Int64(value)))
        }
    }

    /// Applies `entries` in chunks, compacting after each as a replica does, and returns the final state.
    static func incremental<S>(_ entries: [MergeEntry], cuts: [Int], rule: ([MergeEntry]) -> (S?, [Int64])) -> S? {
        var retained: [MergeEntry] = []
        var start = 0
        for cut in (cuts.map { min(max($0, 0), entries.count) }.sorted() + [entries.count]) where cut >= start {
            retained += entries[start..<cut]
            let (_, dropped) = rule(retained)
            retained.removeAll { dropped.contains($0.localSeq) }
            start = cut
        }
        return rule(retained).0
    }

    static let codes = Gen.int(in: 0...494).array(of: 1...14)
    static let cuts = Gen.int(in: 0...14).array(of: 0...4)
    /// Sort keys that give the arrival order (a permutation of the history).
    static let order = Gen.int(in: 0...99).array(of: 15...15)

    static func permuted(_ entries: [MergeEntry], by keys: [Int]) -> [MergeEntry] {
        entries.enumerated().sorted { a, b in
            let ka = keys[a.offset % keys.count], kb = keys[b.offset % keys.count]
            return ka != kb ? ka < kb : a.offset < b.offset
        }.map(\.element)
    }

    @Test func readStateIsOrderInsensitiveAndCompactionSafe() async {
        await propertyCheck(count: 1000, input: Self.codes, Self.cuts, Self.order) { codes, cuts, order in
            let all = Self.entries(codes, field: Self.readStateField)
            let arrival = Self.permuted(all, by: order)
            let expected = MergeRules.readState(all).state
            #expect(MergeRules.readState(arrival).state == expected)
            #expect(Self.incremental(all, cuts: cuts, rule: MergeRules.readState) == expected)
            #expect(Self.incremental(arrival, cuts: cuts, rule: MergeRules.readState) == expected)
        }
    }

    @Test func articleIsOrderInsensitiveAndCompactionSafe() async throws {
        await propertyCheck(count: 500, input: Self.codes, Self.cuts, Self.order) { codes, cuts, order in
            let all = Self.entries(codes) { kind, value in
                let content = ArticleContent(Article(id: "a", source: "S", title: "v\(value)", body: "b",
                                                     updatedAt: kind == 4 ? nil : Date(timeIntervalSince1970: Double(kind))))
                return (ChangeField.articleContent, .string((try? content.encoded()) ?? ""))
            }
            let arrival = Self.permuted(all, by: order)
            let expected = MergeRules.article(all).content
            #expect(MergeRules.article(arrival).content == expected)
            #expect(Self.incremental(arrival, cuts: cuts, rule: MergeRules.article) == expected)
        }
    }

    @Test func commentIsOrderInsensitiveAndCompactionSafe() async throws {
        let created = (try? CommentCreation(article: "a", parent: nil).encoded()) ?? ""
        await propertyCheck(count: 1000, input: Self.codes, Self.cuts, Self.order) { codes, cuts, order in
            // Devices 0 and 1 are the author's; device 2 is another account trying to write.
            var all = Self.entries(codes, field: { kind, value in
                switch kind {
                case 0, 1, 2: return (ChangeField.commentBody, .string("text \(value)"))
                case 3: return (ChangeField.commentDeleted, .bool(true))
                default: return (ChangeField.commentCreated, .string(created))
                }
            }, accounts: ["alice", "alice", "mallory"])
            // The creation is the author's first write; it may still arrive in any order.
            all.insert(MergeEntry(localSeq: 0, origin: Self.origins[0], originAccount: "alice", seq: 0,
                                  hlc: HLCTimestamp(millis: 999, counter: 0), field: ChangeField.commentCreated,
                                  value: .string(created)), at: 0)
            let arrival = Self.permuted(all, by: order)
            for id in ["c-1", "alice:c-1"] {   // an id of older versions, and one bound to alice
                let rule = { (entries: [MergeEntry]) in MergeRules.comment(entries, commentID: id) }
                let expected = rule(all).state
                #expect(expected?.author == "alice")
                #expect(rule(arrival).state == expected)
                #expect(Self.incremental(all, cuts: cuts, rule: rule) == expected)
                #expect(Self.incremental(arrival, cuts: cuts, rule: rule) == expected)
            }
            let expected = MergeRules.comment(all, commentID: "alice:c-1").state
            // Nothing mallory wrote shows.
            if let body = expected?.body, !body.isEmpty {
                let authorBodies = all.filter { $0.originAccount == "alice" && $0.field == ChangeField.commentBody }
                #expect(authorBodies.contains { $0.value == .string(body) })
            }
        }
    }
}
