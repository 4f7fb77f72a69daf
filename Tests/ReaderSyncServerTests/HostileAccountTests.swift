import Foundation
import Hummingbird
import HummingbirdTesting
@testable import ReaderSync
import ReaderSyncServer
import Testing

/// One account must never break another's device (issue "The sync server against hostile accounts", items 1–3
/// and 7): bundles crafted by hand, as a hostile client would send them.
@Suite("The server against hostile accounts")
struct HostileAccountTests {
    static let t0 = Date().timeIntervalSince1970 * 1000

    /// A bundle from replica `source` of `account` holding `changes` (all of that origin, numbered from 1).
    static func crafted(source: ReplicaID, account: String, _ changes: [(EntityKind, String, String, ChangeValue)]) throws -> ByteBuffer {
        let now = UInt64(t0)
        let full = changes.enumerated().map { n, c in
            Change(origin: source, account: account, seq: UInt64(n + 1), hlc: HLCTimestamp(millis: now, counter: UInt16(n)),
                   entity: c.0, key: c.1, field: c.2, value: c.3)
        }
        var ranges: [KnowledgeRange] = []
        for scope in ChangeScope.allCases {
            let seqs = full.filter { $0.scope == scope }.map(\.seq)
            if let hi = seqs.max() {
                ranges.append(KnowledgeRange(origin: source, account: account, scope: scope, from: 0, to: hi, toIncarnation: 1))
            }
        }
        let writer = try BundleWriter(source: source, account: account, schemaVersion: UInt16(StoreSchema.currentVersion),
                                      origins: [BundleOriginInfo(id: source, account: account)], ranges: ranges)
        for change in full { try writer.append(change) }
        return ByteBuffer(data: try writer.finishData().1)
    }

    static func push(_ client: any TestClientProtocol, _ bundle: ByteBuffer, token: String) async throws -> TestResponse {
        try await client.execute(uri: "/v1/sync/push", method: .post,
                                 headers: auth(token, ["Content-Type": SyncHTTP.bundleMediaType]), body: bundle)
    }

    @Test("Pre-claiming the id of another account's comment is refused per change; its author's device keeps syncing")
    func commentIDPreClaim() async throws {
        let fixture = try await Fixture()
        let bob = try Replica.inMemory(account: "bob")
        try await fixture.app().test(.router) { client in
            let bobTransport = routerTransport(client, token: fixture.bob.token)
            _ = try await bob.sync(using: bobTransport)
            let comment = try await bob.addComment(to: "a1", body: "bob's words")  // not synced yet
            #expect(comment.id.hasPrefix("bob:"))
            // Alice saw the id in a bundle carried by hand, and pushes a creation of it first, with her text.
            let claim = try Self.crafted(source: ReplicaID.random(), account: "alice", [
                (.comment, comment.id, ChangeField.commentCreated, .string(CommentCreation(article: "a1", parent: nil).encoded())),
                (.comment, comment.id, ChangeField.commentBody, .string("alice's words")),
            ])
            let response = try await Self.push(client, claim, token: fixture.alice.token)
            #expect(response.status == .ok)
            let answer = try JSONDecoder().decode(PushResponse.self, from: Data(buffer: response.body))
            #expect(answer.applied == 0)
            #expect(answer.refused.count == 2)
            #expect(answer.refused.allSatisfy { $0.reason.contains("belongs to account bob") }, "\(answer.refused)")

            // Bob's device syncs as if nothing happened, and everyone sees bob's comment.
            let report = try await bob.sync(using: bobTransport)
            #expect(report.refused.isEmpty)
            let alice = try Replica.inMemory(account: "alice")
            _ = try await alice.sync(using: routerTransport(client, token: fixture.alice.token))
            let seen = try await alice.comment(comment.id)
            #expect(seen.author == "bob" && seen.body == "bob's words")
            let server = try DumpParts(try await fixture.store.canonicalDump(account: nil))
            #expect(server.comments.contains("bob's words") && !server.comments.contains("alice's words"))
        }
    }

    @Test("Editing or deleting another account's comment is refused change by change; the rest of the push applies")
    func anotherAuthorsComment() async throws {
        let fixture = try await Fixture()
        let alice = try Replica.inMemory(account: "alice")
        try await fixture.app().test(.router) { client in
            let transport = routerTransport(client, token: fixture.alice.token)
            _ = try await alice.sync(using: transport)
            let comment = try await alice.addComment(to: "a1", body: "alice's words")
            _ = try await alice.sync(using: transport)
            let forged = try Self.crafted(source: ReplicaID.random(), account: "bob", [
                (.comment, comment.id, ChangeField.commentBody, .string("not alice")),
                (.comment, comment.id, ChangeField.commentDeleted, .bool(true)),
                (.readState, "a1", ChangeField.read, .int(Int64(Self.t0))),
            ])
            let response = try await Self.push(client, forged, token: fixture.bob.token)
            #expect(response.status == .ok)
            let answer = try JSONDecoder().decode(PushResponse.self, from: Data(buffer: response.body))
            #expect(answer.refused.map(\.field) == [ChangeField.commentBody, ChangeField.commentDeleted])
            #expect(answer.refused.allSatisfy { $0.key == comment.id && $0.reason.contains("belongs to account alice") })
            #expect(answer.applied == 1, "bob's own read mark applies")
            _ = try await alice.sync(using: transport)
            let held = try await alice.comment(comment.id)
            #expect(held.body == "alice's words" && !held.isDeleted)
        }
    }

    @Test("A replica id pushed first under another account does not lock out its owner")
    func replicaIDSquatting() async throws {
        let fixture = try await Fixture()
        let bobDevice = try Replica.inMemory(account: "bob")
        try await fixture.app().test(.router) { client in
            // Alice learns the id of bob's new device and pushes under it, declaring her own account.
            let squat = try Self.crafted(source: bobDevice.replicaID, account: "alice", [
                (.readState, "a1", ChangeField.read, .int(Int64(Self.t0))),
            ])
            let response = try await Self.push(client, squat, token: fixture.alice.token)
            #expect(response.status == .ok)
            // Bob's device syncs, again and again, and its changes arrive.
            let bobTransport = routerTransport(client, token: fixture.bob.token)
            _ = try await bobDevice.sync(using: bobTransport)
            try await bobDevice.markRead("a2")
            try await bobDevice.addComment(to: "a1", body: "still syncing")
            let again = try await bobDevice.sync(using: bobTransport)
            #expect(again.pushed.applied >= 2)
            #expect(again.identityChange == nil, "another account's use of the id is not this device's history")
            let other = try Replica.inMemory(account: "bob")
            _ = try await other.sync(using: bobTransport)
            await #expect(try other.readState(of: "a2").isRead)
            await #expect(try !other.readState(of: "a1").isRead, "alice's read state never reaches bob")
            await #expect(try other.comments(on: "a1").first?.comment.body == "still syncing")
        }
    }

    @Test("A push whose header names another account is refused with a problem body")
    func headerAccountMismatch() async throws {
        let fixture = try await Fixture()
        try await fixture.app().test(.router) { client in
            let forged = try Self.crafted(source: ReplicaID.random(), account: "bob", [
                (.readState, "a1", ChangeField.read, .int(Int64(Self.t0))),
            ])
            let before = try await fixture.store.canonicalDump(account: nil)
            let response = try await Self.push(client, forged, token: fixture.alice.token)
            let problem = try expectProblem(response, 403, slug: "forbidden")
            #expect(problem.detail.contains("'bob'") && problem.detail.contains("'alice'"), "\(problem.detail)")
            #expect(try await fixture.store.canonicalDump(account: nil) == before, "nothing applied")
        }
    }

    @Test("A value the merge rules do not allow is refused with 422 naming the change; NaN included",
          arguments: [ChangeValue.double(5.0), .double(-1), .double(.infinity), .double(.nan), .string("yesterday")])
    func invalidValues(value: ChangeValue) async throws {
        let fixture = try await Fixture()
        try await fixture.app().test(.router) { client in
            let field = value.stringValue == nil ? ChangeField.progress : ChangeField.read
            let bad = try Self.crafted(source: ReplicaID.random(), account: "alice", [
                (.readState, "a2", ChangeField.saved, .int(Int64(Self.t0))),
                (.readState, "a1", field, value),
            ])
            let before = try await fixture.store.canonicalDump(account: nil)
            let response = try await Self.push(client, bad, token: fixture.alice.token)
            let problem = try expectProblem(response, 422, slug: "invalid-value")
            #expect(problem.detail.contains("#2") && problem.detail.contains(field), "\(problem.detail)")
            #expect(try await fixture.store.canonicalDump(account: nil) == before, "nothing applied")
        }
    }
}
