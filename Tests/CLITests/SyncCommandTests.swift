import Foundation
import Testing

/// `readersync sync PEER` between two replica files.
@Suite("readersync: sync")
final class SyncCommandTests {
    let box: Sandbox
    init() throws { box = try Sandbox() }

    /// Parses "sent N changes (X) to P: M new" / "received N changes (X) from P: M new".
    private func moved(_ line: String) -> (changes: Int, new: Int)? {
        let words = line.split(separator: " ")
        guard words.count >= 4, let changes = Int(words[1]), let new = Int(words[words.count - 2]) else { return nil }
        return (changes, new)
    }

    @Test("two devices of one account change offline, sync, and end with byte-identical dumps")
    func sameAccountConverges() throws {
        try box.replicaWithFixture("phone.db")
        try box.ok("init", "--db", "laptop.db", "--account", "alice")

        let first = try box.ok("sync", "--db", "phone.db", "laptop.db")
        #expect(first.lines.count == 2, "\(first)")
        #expect(first.lines.first?.hasPrefix("sent 4 changes (") == true, "\(first)")
        #expect(first.lines.first?.hasSuffix(" to laptop.db: 4 new") == true, "\(first)")
        #expect(first.lines.last?.hasPrefix("received 0 changes (") == true, "\(first)")
        #expect(try box.dump("phone.db") == box.dump("laptop.db"))

        // Offline on both.
        try box.ok("read", "--db", "phone.db", FixtureIDs.main)
        try box.ok("progress", "--db", "phone.db", FixtureIDs.gaza, "0.3")
        let phoneComment = try box.addComment("phone.db", FixtureIDs.main, "From the phone")
        try box.ok("save", "--db", "laptop.db", FixtureIDs.stocks)
        try box.ok("progress", "--db", "laptop.db", FixtureIDs.gaza, "0.6")
        let laptopComment = try box.addComment("laptop.db", FixtureIDs.main, "From the laptop")
        #expect(try box.dump("phone.db") != box.dump("laptop.db"))

        let second = try box.ok("sync", "--db", "laptop.db", "phone.db")
        let sent = try #require(second.lines.first.flatMap(moved), "\(second)")
        let received = try #require(second.lines.dropFirst().first.flatMap(moved), "\(second)")
        #expect(sent.changes == 4 && sent.new == 4, "save, progress, 2 comment entries: \(second)")
        // The phone's progress 0.3 is superseded by the laptop's later 0.6 as soon as the phone has it
        // (compaction), so it is not sent back: read and 2 comment entries.
        #expect(received.changes == 3 && received.new == 3, "read, 2 comment entries: \(second)")

        let phone = try box.dump("phone.db")
        #expect(phone == (try box.dump("laptop.db")), "dumps must be byte-identical after sync")
        let parts = DumpParts(try JSONSerialization.jsonObject(with: phone) as? [String: Any] ?? [:])
        #expect(Set(parts.comments.compactMap { $0["id"] as? String }) == [phoneComment, laptopComment])
        let gaza = try #require(parts.readStates.first { $0["article"] as? String == FixtureIDs.gaza })
        #expect(gaza["progress"] as? Double == 0.6, "the furthest position wins")
        #expect(parts.readStates.first { $0["article"] as? String == FixtureIDs.main }?["read"] as? Bool == true)
        #expect(parts.readStates.first { $0["article"] as? String == FixtureIDs.stocks }?["saved"] as? Bool == true)

        // Nothing left to move.
        let third = try box.ok("sync", "--db", "phone.db", "laptop.db")
        #expect(third.lines.compactMap(moved).map(\.new) == [0, 0], "\(third)")
        #expect(try box.dump("phone.db") == box.dump("laptop.db"))
    }

    @Test("replicas of different accounts share articles and comments, never read state")
    func differentAccountsKeepReadStatePrivate() throws {
        try box.replicaWithFixture("alice.db", account: "alice")
        try box.ok("init", "--db", "bob.db", "--account", "bob")
        try box.ok("read", "--db", "alice.db", FixtureIDs.main)
        try box.ok("save", "--db", "alice.db", FixtureIDs.stocks)
        try box.ok("progress", "--db", "alice.db", FixtureIDs.gaza, "0.5")
        let alices = try box.addComment("alice.db", FixtureIDs.main, "Alice says")

        let first = try box.ok("sync", "--db", "bob.db", "alice.db")
        #expect(first.stdout.contains("note: alice.db belongs to account alice; read state was not exchanged"), "\(first)")
        try box.ok("read", "--db", "bob.db", FixtureIDs.hamas)
        _ = try box.addComment("bob.db", FixtureIDs.main, "Bob replies", replyTo: alices)
        try box.ok("sync", "--db", "alice.db", "bob.db")

        let alice = DumpParts(try box.dumpJSON("alice.db"))
        let bob = DumpParts(try box.dumpJSON("bob.db"))
        #expect(try canonical(alice.articles) == canonical(bob.articles))
        #expect(try canonical(alice.comments) == canonical(bob.comments))
        #expect(alice.comments.count == 2)
        #expect(Set(alice.readStates.compactMap { $0["account"] as? String }) == ["alice"])
        #expect(alice.readStates.count == 3)
        #expect(Set(bob.readStates.compactMap { $0["account"] as? String }) == ["bob"])
        #expect(bob.readStates.compactMap { $0["article"] as? String } == [FixtureIDs.hamas])
        #expect(try box.ok("list", "--db", "bob.db", "--saved").stdout == "(no articles)\n")
        // The log of bob holds no read-state entry of alice's.
        let bobLog = try box.ok("log", "--db", "bob.db").lines
        #expect(!bobLog.contains { $0.contains("alice@") && $0.contains("\treadState ") }, "\(bobLog)")
        #expect(bobLog.contains { $0.contains("alice@") && $0.contains("\tcomment \(alices) .body") }, "\(bobLog)")
    }

    @Test("a sync relays changes from a third replica (A → B → C)")
    func syncRelays() throws {
        try box.replicaWithFixture("a.db")
        try box.ok("init", "--db", "b.db", "--account", "alice")
        try box.ok("init", "--db", "c.db", "--account", "alice")
        let comment = try box.addComment("a.db", FixtureIDs.main, "made on A")
        try box.ok("save", "--db", "a.db", FixtureIDs.hamas)
        try box.ok("sync", "--db", "a.db", "b.db")
        try box.ok("sync", "--db", "b.db", "c.db")
        let c = try box.dump("c.db")
        #expect(c == (try box.dump("a.db")))
        #expect(String(decoding: c, as: UTF8.self).contains(comment))
        // A already holds everything C has; syncing them moves nothing new.
        let again = try box.ok("sync", "--db", "c.db", "a.db")
        #expect(again.lines.compactMap(moved).map(\.new) == [0, 0], "\(again)")
    }

    @Test("sync with itself, with a missing peer, or with a file that is not a replica is refused")
    func badPeers() throws {
        try box.replicaWithFixture("r.db")
        try box.ok("read", "--db", "r.db", FixtureIDs.main)
        let before = try box.dump("r.db")
        expectError(try box.run("sync", "--db", "r.db", "r.db"), mentions: ["same replica"])
        try FileManager.default.createSymbolicLink(atPath: box.path("alias.db"), withDestinationPath: box.path("r.db"))
        expectError(try box.run("sync", "--db", "r.db", "alias.db"), mentions: ["same replica"])
        expectError(try box.run("sync", "--db", "r.db", "absent.db"), mentions: ["absent.db"])
        #expect(!box.exists("absent.db"))
        try box.write("notes.txt", "hello\n")
        expectError(try box.run("sync", "--db", "r.db", "notes.txt"), mentions: ["notes.txt", "not a ReaderSync replica"])
        #expect(try box.bytes("notes.txt") == Data("hello\n".utf8))
        #expect(try box.dump("r.db") == before)
    }
}
