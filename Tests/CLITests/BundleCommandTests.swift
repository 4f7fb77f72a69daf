import Foundation
import Testing

/// Bundles carried by hand: `knowledge`, `bundle export --all | --for`, `bundle import`, `bundle inspect`,
/// and bundles that must be refused.
@Suite("readersync: bundles")
final class BundleCommandTests {
    let box: Sandbox
    init() throws { box = try Sandbox() }

    /// Alice's phone with the fixture, some read state and a comment thread.
    private func alicePhone() throws -> (comment: String, reply: String) {
        try box.replicaWithFixture("phone.db", account: "alice")
        try box.ok("read", "--db", "phone.db", FixtureIDs.main)
        try box.ok("save", "--db", "phone.db", FixtureIDs.stocks)
        let comment = try box.addComment("phone.db", FixtureIDs.main, "Worth reading")
        let reply = try box.addComment("phone.db", FixtureIDs.main, "Indeed", replyTo: comment)
        return (comment, reply)
    }

    @Test("export --all and import bring a device of the same account to an identical dump")
    func exportAllImport() throws {
        _ = try alicePhone()
        let export = try box.ok("bundle", "export", "--db", "phone.db", "--all", "--out", "all.bundle")
        #expect(export.stdout.hasPrefix("wrote 10 changes to all.bundle ("), "4 articles, read, save, 2×2 comment entries: \(export)")
        try box.ok("init", "--db", "laptop.db", "--account", "alice")
        let imported = try box.ok("bundle", "import", "--db", "laptop.db", "all.bundle")
        #expect(imported.stdout == "merged 10 new changes from all.bundle (10 in bundle, 0 already held)\n")
        #expect(try box.dump("laptop.db") == box.dump("phone.db"))

        // Importing it again changes nothing.
        let before = try box.dump("laptop.db")
        let again = try box.ok("bundle", "import", "--db", "laptop.db", "all.bundle")
        #expect(again.stdout == "merged 0 new changes from all.bundle (10 in bundle, 10 already held)\n")
        #expect(try box.dump("laptop.db") == before)
    }

    @Test("knowledge + export --for + import carries shared data to another account, without read state")
    func exportForKnowledge() throws {
        let (comment, reply) = try alicePhone()
        try box.ok("init", "--db", "bob.db", "--account", "bob")
        let knowledge = try box.ok("knowledge", "--db", "bob.db", "--out", "bob.knowledge")
        #expect(knowledge.stdout == "wrote knowledge of 0 origin streams to bob.knowledge\n")
        let file = try #require(try JSONSerialization.jsonObject(with: box.bytes("bob.knowledge")) as? [String: Any])
        #expect(file["account"] as? String == "bob")

        let export = try box.ok("bundle", "export", "--db", "phone.db", "--for", "bob.knowledge", "--out", "for-bob.bundle")
        #expect(export.stdout.hasPrefix("wrote 8 changes to for-bob.bundle ("), "no read state for bob: \(export)")
        let inspect = try box.ok("bundle", "inspect", "for-bob.bundle")
        #expect(inspect.stdout.contains("changes:     8  [article: 4, comment: 4]"), "\(inspect)")
        #expect(!inspect.stdout.contains("private"), "\(inspect)")

        try box.ok("bundle", "import", "--db", "bob.db", "for-bob.bundle")
        let bob = DumpParts(try box.dumpJSON("bob.db"))
        let alice = DumpParts(try box.dumpJSON("phone.db"))
        #expect(try canonical(bob.articles) == canonical(alice.articles))
        #expect(try canonical(bob.comments) == canonical(alice.comments))
        #expect(Set(bob.comments.compactMap { $0["id"] as? String }) == [comment, reply])
        #expect(bob.readStates.isEmpty)
        let shown = try box.ok("show", "--db", "bob.db", FixtureIDs.main)
        #expect(shown.stdout.contains("  - alice: Worth reading  (\(comment))"))
        #expect(shown.stdout.contains("    - alice: Indeed  (\(reply))"))

        // Once bob's knowledge is current, the phone has nothing more for it.
        try box.ok("knowledge", "--db", "bob.db", "--out", "bob2.knowledge")
        let nothing = try box.ok("bundle", "export", "--db", "phone.db", "--for", "bob2.knowledge", "--out", "empty.bundle")
        #expect(nothing.stdout.hasPrefix("wrote 0 changes to empty.bundle ("), "\(nothing)")
    }

    @Test("export --for a device of the same account carries read state too")
    func exportForSameAccount() throws {
        _ = try alicePhone()
        try box.ok("init", "--db", "tablet.db", "--account", "alice")
        try box.ok("knowledge", "--db", "tablet.db", "--out", "tablet.knowledge")
        try box.ok("bundle", "export", "--db", "phone.db", "--for", "tablet.knowledge", "--out", "t.bundle")
        try box.ok("bundle", "import", "--db", "tablet.db", "t.bundle")
        #expect(try box.dump("tablet.db") == box.dump("phone.db"))
    }

    @Test("inspect prints the header, the counts and a verified checksum")
    func inspect() throws {
        _ = try alicePhone()
        let status = try box.status("phone.db")
        let replicaID = try #require(status["replica"] as? String)
        try box.ok("bundle", "export", "--db", "phone.db", "--all", "--out", "all.bundle")
        let size = try box.bytes("all.bundle").count

        let text = try box.ok("bundle", "inspect", "all.bundle")
        let schemaVersion = try #require(status["schemaVersion"] as? Int)
        #expect(text.lines.first == "format:      v2 (store schema v\(schemaVersion))", "the store's schema version: \(text)")
        #expect(text.lines.contains("source:      \(replicaID) (account alice)"), "\(text)")
        #expect(text.lines.contains("changes:     10  [article: 4, comment: 4, readState: 2]"), "\(text)")
        #expect(text.lines.contains { $0.hasPrefix("checksum:    0x") && $0.hasSuffix(" (verified)") }, "\(text)")
        #expect(text.lines.contains("  alice@\(replicaID) shared: changes 1...10"), "\(text)")
        #expect(text.lines.contains("  alice@\(replicaID) private: changes 1...10"), "\(text)")

        let json = try #require(try parseJSON(try box.ok("bundle", "inspect", "--json", "all.bundle")) as? [String: Any])
        #expect(json["changeCount"] as? Int == 10)
        #expect(json["account"] as? String == "alice")
        let payload = try #require(json["payloadBytes"] as? Int)
        #expect(payload > 0 && payload < size)
        #expect((json["changesByEntity"] as? [String: Int]) == ["article": 4, "comment": 4, "readState": 2])
        #expect(json["format"] as? String == "readersync-bundle-inspect/1")
        #expect(json["replica"] as? String == replicaID)
    }

    // MARK: - Bad bundles

    /// Imports `bundle` into laptop.db (alice) and checks the error contract and that the dump did not change;
    /// `inspect` must refuse it too unless `inspectable`.
    private func expectRefusedBundle(_ bundle: String, mentions: [String], inspectable: Bool = false,
                                     sourceLocation: SourceLocation = #_sourceLocation) throws {
        let before = try box.dump("laptop.db", sourceLocation: sourceLocation)
        let logBefore = try box.ok("log", "--db", "laptop.db").stdout
        let result = try box.run("bundle", "import", "--db", "laptop.db", bundle)
        expectError(result, mentions: mentions, sourceLocation: sourceLocation)
        #expect(try box.dump("laptop.db", sourceLocation: sourceLocation) == before, "dump changed: \(result)",
                sourceLocation: sourceLocation)
        #expect(try box.ok("log", "--db", "laptop.db").stdout == logBefore, "log changed: \(result)",
                sourceLocation: sourceLocation)
        if !inspectable {
            expectError(try box.run("bundle", "inspect", bundle), mentions: mentions, sourceLocation: sourceLocation)
        }
    }

    /// A good bundle of alice's phone, and alice's laptop (with the fixture and its own read state) to receive it.
    private func goodBundle() throws -> Data {
        _ = try alicePhone()
        try box.replicaWithFixture("laptop.db", account: "alice")
        try box.ok("read", "--db", "laptop.db", FixtureIDs.hamas)
        try box.ok("bundle", "export", "--db", "phone.db", "--all", "--out", "good.bundle")
        return try box.bytes("good.bundle")
    }

    @Test("a truncated bundle is refused")
    func truncated() throws {
        let good = try goodBundle()
        let headerLength = Int(readLE32(good, at: 10))
        try box.write("short-header.bundle", bytes: good.prefix(40))
        try expectRefusedBundle("short-header.bundle", mentions: ["truncated"])
        try box.write("short-payload.bundle", bytes: good.prefix(headerLength + (good.count - headerLength) / 2))
        try expectRefusedBundle("short-payload.bundle", mentions: ["truncated"])
        try box.write("empty.bundle", bytes: Data())
        try expectRefusedBundle("empty.bundle", mentions: ["empty"])
    }

    @Test("a bundle with a flipped byte is refused (payload and header)")
    func flippedByte() throws {
        var payload = try goodBundle()
        payload[payload.count - 20] ^= 0x04
        try box.write("payload-flip.bundle", bytes: payload)
        try expectRefusedBundle("payload-flip.bundle", mentions: ["checksum mismatch"])

        var header = try box.bytes("good.bundle")
        header[30] ^= 0x01  // inside the source replica id
        try box.write("header-flip.bundle", bytes: header)
        try expectRefusedBundle("header-flip.bundle", mentions: ["checksum mismatch"])
    }

    @Test("a file with the wrong magic is refused")
    func wrongMagic() throws {
        var bytes = try goodBundle()
        bytes.replaceSubrange(0..<4, with: Data("PK\u{3}\u{4}".utf8))
        try box.write("zip.bundle", bytes: bytes)
        try expectRefusedBundle("zip.bundle", mentions: ["not a ReaderSync bundle", "magic"])
        try box.write("text.bundle", "readersync bundle, honest\n")
        try expectRefusedBundle("text.bundle", mentions: ["not a ReaderSync bundle"])
        // A replica is not a bundle either.
        try expectRefusedBundle(box.path("phone.db"), mentions: ["not a ReaderSync bundle"])
    }

    @Test("a bundle of a newer format version is refused")
    func newerFormat() throws {
        var bytes = try goodBundle()
        bytes[8] = 3; bytes[9] = 0
        resealHeader(&bytes)
        try box.write("v3.bundle", bytes: bytes)
        try expectRefusedBundle("v3.bundle", mentions: ["format version 3", "newer"])
    }

    @Test("a bundle whose header claims absurd sizes is refused")
    func absurdSizes() throws {
        let good = try goodBundle()
        // changeCount at 42, payloadLength at 50, uncompressedLength at 58 (see Schemas/bundle-format.md, 3.2).
        for (offset, what) in [(42, "changes"), (50, "payload"), (58, "inflates")] {
            var bytes = good
            for i in 0..<8 { bytes[offset + i] = i == 7 ? 0x7f : 0xff }
            resealHeader(&bytes)
            try box.write("absurd-\(offset).bundle", bytes: bytes)
            try expectRefusedBundle("absurd-\(offset).bundle", mentions: [what, "limit"])
        }
    }

    @Test("a bundle carrying another account's read state is refused")
    func anotherAccountsReadState() throws {
        _ = try goodBundle()
        try box.replicaWithFixture("bob.db", account: "bob")
        try box.ok("read", "--db", "bob.db", FixtureIDs.gaza)
        try box.ok("bundle", "export", "--db", "bob.db", "--all", "--out", "bob-all.bundle")
        try expectRefusedBundle("bob-all.bundle", mentions: ["read state", "bob", "alice"], inspectable: true)
        // Without the read state (--shared-only) the same export is welcome.
        try box.ok("bundle", "export", "--db", "bob.db", "--all", "--shared-only", "--out", "bob-shared.bundle")
        try box.ok("bundle", "import", "--db", "laptop.db", "bob-shared.bundle")
        #expect(DumpParts(try box.dumpJSON("laptop.db")).readStates.allSatisfy { $0["account"] as? String == "alice" })
    }

    @Test("a missing bundle file is refused")
    func missingBundle() throws {
        _ = try goodBundle()
        try expectRefusedBundle("absent.bundle", mentions: ["absent.bundle"])
    }

    @Test("a bad knowledge file is refused and no bundle is written")
    func badKnowledgeFile() throws {
        _ = try alicePhone()
        try box.write("k.json", "{\"not\": \"knowledge\"}")
        expectError(try box.run("bundle", "export", "--db", "phone.db", "--for", "k.json", "--out", "x.bundle"),
                    mentions: ["k.json", "not a knowledge file"])
        expectError(try box.run("bundle", "export", "--db", "phone.db", "--for", "absent.json", "--out", "x.bundle"),
                    mentions: ["absent.json"])
        #expect(!box.exists("x.bundle"))
    }

    @Test("export to a path that cannot be written is refused")
    func unwritableExport() throws {
        _ = try alicePhone()
        expectError(try box.run("bundle", "export", "--db", "phone.db", "--all", "--out", "no/such/dir/x.bundle"))
        expectError(try box.run("knowledge", "--db", "phone.db", "--out", "no/such/dir/k.json"), mentions: ["no/such/dir"])
    }
}

// MARK: - Bundle bytes

/// A little-endian u32 at `offset`.
func readLE32(_ data: Data, at offset: Int) -> UInt32 {
    (0..<4).reduce(UInt32(0)) { $0 | UInt32(data[data.startIndex + offset + $1]) << (8 * UInt32($1)) }
}

/// Recomputes the header CRC-32 of an edited bundle (the header's last 4 bytes, little-endian, over the rest
/// of the header), so the edit is seen by the checks behind the CRC.
func resealHeader(_ bytes: inout Data) {
    let length = Int(readLE32(bytes, at: 10))
    let crc = crc32(bytes[bytes.startIndex..<(bytes.startIndex + length - 4)])
    for i in 0..<4 { bytes[bytes.startIndex + length - 4 + i] = UInt8((crc >> (8 * UInt32(i))) & 0xff) }
}

/// CRC-32 (IEEE, as zlib's `crc32`).
func crc32(_ bytes: some Collection<UInt8>) -> UInt32 {
    var crc: UInt32 = 0xffff_ffff
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = (crc >> 1) ^ (0xedb8_8320 & (0 &- (crc & 1))) }
    }
    return ~crc
}
