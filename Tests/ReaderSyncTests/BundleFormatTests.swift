import Foundation
import Testing
@testable import ReaderSync

/// The delta-bundle format: zlib layer, codecs, round trips, size, and refusal of every kind of bad input.
@Suite("Bundle format")
struct BundleFormatTests {
    // MARK: - Helpers

    /// A deterministic RNG (SplitMix64, shared with the convergence tests) so failures reproduce.
    typealias SeededRNG = SeededRandom

    static func replica(_ n: UInt8) -> ReplicaID {
        ReplicaID(bytes: [UInt8](repeating: n, count: 15) + [n &+ 1]) ?? ReplicaID.random()
    }

    static let source = replica(0xA0)
    static let t0: UInt64 = 1_751_544_000_000  // 2025-07-03T12:00:00Z

    /// The message of the `invalidBundle` error `body` throws; nil if it does not throw.
    /// Any other error is reported as a message starting with "UNEXPECTED".
    static func failure(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch let ReaderSyncError.invalidBundle(message) {
            return message
        } catch {
            return "UNEXPECTED \(error)"
        }
    }

    static func readAll(_ reader: BundleReader) throws -> [Change] {
        var changes: [Change] = []
        while let change = try reader.next() { changes.append(change) }
        return changes
    }

    static func readAll(_ data: Data) throws -> (BundleHeader, [Change]) {
        let reader = try BundleReader(data: data)
        return (reader.header, try readAll(reader))
    }

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("bundle-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Writes `changes` (grouped into ranges computed from them unless given) and returns the bundle.
    static func write(_ changes: [Change], origins: [BundleOriginInfo]? = nil, ranges: [KnowledgeRange]? = nil,
                      source: ReplicaID = source) throws -> (header: BundleHeader, data: Data) {
        let writer = try BundleWriter(source: source, account: "alice", schemaVersion: 3,
                                      origins: origins ?? originTable(for: changes),
                                      ranges: ranges ?? tightRanges(for: changes))
        for change in changes { try writer.append(change) }
        return try writer.finishData()
    }

    static func originTable(for changes: [Change]) -> [BundleOriginInfo] {
        var seen = Set<ReplicaID>()
        return changes.compactMap { seen.insert($0.origin).inserted ? BundleOriginInfo(id: $0.origin, account: "acct-\($0.origin.bytes[0])") : nil }
    }

    /// Ranges `(min seq - 1, max seq]` per origin and scope, in first-appearance order.
    static func tightRanges(for changes: [Change]) -> [KnowledgeRange] {
        var order: [Knowledge.Key] = []
        var bounds: [Knowledge.Key: (UInt64, UInt64)] = [:]
        for c in changes {
            let key = Knowledge.Key(origin: c.origin, scope: c.scope)
            if let (lo, hi) = bounds[key] {
                bounds[key] = (min(lo, c.seq), max(hi, c.seq))
            } else {
                order.append(key)
                bounds[key] = (c.seq, c.seq)
            }
        }
        return order.compactMap { key in
            bounds[key].map { KnowledgeRange(origin: key.origin, scope: key.scope, from: $0.0 - 1, to: $0.1) }
        }
    }

    static let fieldsByEntity: [EntityKind: [String]] = [
        .article: [ChangeField.articleContent],
        .comment: [ChangeField.commentCreated, ChangeField.commentBody, ChangeField.commentDeleted],
        .readState: [ChangeField.read, ChangeField.progress, ChangeField.saved],
    ]

    static let sampleStrings = ["", "a", "héllo wörld", "e\u{301}", "\u{E9}", "日本語のテキスト", "🧑‍🚀🚀", "\u{0}nul",
                                "quote\"back\\slash", String(repeating: "x", count: 300)]

    /// Random changes from `origins`: every entity, field and value type, HLCs that wander both ways.
    static func randomChanges(count: Int, origins: [ReplicaID], rng: inout SeededRNG) -> [Change] {
        var nextSeq: [ReplicaID: UInt64] = [:]
        var millis = t0
        var changes: [Change] = []
        for _ in 0..<count {
            let origin = origins[Int.random(in: 0..<origins.count, using: &rng)]
            let seq = (nextSeq[origin] ?? UInt64.random(in: 0...1000, using: &rng)) + UInt64.random(in: 1...3, using: &rng)
            nextSeq[origin] = seq
            millis = UInt64(Int64(millis) + Int64.random(in: -5_000...60_000, using: &rng))
            let counter: UInt16 = Bool.random(using: &rng) ? 0 : UInt16.random(in: 0...UInt16.max, using: &rng)
            let entity = EntityKind.allCases.randomElement(using: &rng) ?? .article
            let field = fieldsByEntity[entity]?.randomElement(using: &rng) ?? ""
            let value: ChangeValue
            switch Int.random(in: 0..<6, using: &rng) {
            case 0: value = .null
            case 1: value = .bool(Bool.random(using: &rng))
            case 2: value = .int([Int64.min, Int64.max, 0, -1, Int64(millis), Int64.random(in: -1000...1000, using: &rng)]
                        .randomElement(using: &rng) ?? 0)
            case 3: value = .double([0.0, -0.0, 1.0, 0.25, .infinity, -.infinity, .pi, Double.random(in: 0...1, using: &rng)]
                        .randomElement(using: &rng) ?? 0)
            case 4: value = .string(sampleStrings.randomElement(using: &rng) ?? "")
            default: value = .string("{\"id\":\"\(UInt32.random(in: 0...UInt32.max, using: &rng))\"}")
            }
            let key = Bool.random(using: &rng)
                ? "article-\(Int.random(in: 0..<50, using: &rng))"
                : (sampleStrings.randomElement(using: &rng) ?? "")
            changes.append(Change(origin: origin, seq: seq, hlc: HLCTimestamp(millis: millis, counter: counter),
                                  entity: entity, key: key, field: field, value: value))
        }
        return changes
    }

    /// Exact equality, including the UTF-8 bytes of strings (Swift's `==` treats "é" and "e\u{301}" alike).
    static func expectIdentical(_ a: [Change], _ b: [Change], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(a.count == b.count, sourceLocation: sourceLocation)
        for (x, y) in zip(a, b) {
            let same = x == y && Array(x.key.utf8) == Array(y.key.utf8) && Array(x.field.utf8) == Array(y.field.utf8)
                && Array((x.value.stringValue ?? "").utf8) == Array((y.value.stringValue ?? "").utf8)
                && x.value.doubleValue?.bitPattern == y.value.doubleValue?.bitPattern
            #expect(same, "\(x) != \(y)", sourceLocation: sourceLocation)
            if !same { return }
        }
    }

    /// A bundle around a hand-made uncompressed payload, with correct lengths and checksums.
    static func handMade(payload: [UInt8], changeCount: UInt64, origins: [BundleOriginInfo],
                         ranges: [KnowledgeRange], uncompressedLength: UInt64? = nil) throws -> Data {
        let compressed = try Deflater.compress(payload)
        let header = BundleHeader(schemaVersion: 1, source: source, account: "alice", origins: origins, ranges: ranges,
                                  changeCount: changeCount, payloadLength: UInt64(compressed.count),
                                  uncompressedLength: uncompressedLength ?? UInt64(payload.count),
                                  checksum: crc32(compressed))
        return Data(try BundleFormat.encodeHeader(header) + compressed)
    }

    /// A payload of one block holding one change, spelled out column by column as the spec says.
    static func oneChangePayload(originIndex: UInt64 = 0, seq: UInt64 = 1, entity: UInt8 = 3, key: String = "a1",
                                 field: String = "read", tag: UInt8 = 3, value: [UInt8] = [0x02],
                                 keyLength: UInt64? = nil, rawKey: [UInt8]? = nil, afterEndMarker: [UInt8] = []) -> [UInt8] {
        let keyBytes = rawKey ?? Array(key.utf8)
        var body = BundleFormat.ByteWriter()
        body.varint(originIndex)                          // origin column
        body.signed(Int64(bitPattern: seq))               // seq column (delta from 0)
        body.varint(BundleFormat.zigzag(Int64(t0)) << 1)  // hlc column, counter 0
        body.u8(entity)                                   // entity column
        body.varint(0)                                    // key column: new string
        body.varint(keyLength ?? UInt64(keyBytes.count))
        body.raw(keyBytes)
        body.varint(0)                                    // field column: new string
        body.string(Array(field.utf8))
        body.u8(tag)                                      // tag column
        body.raw(value)                                   // value column
        var payload = BundleFormat.ByteWriter()
        payload.varint(1)
        payload.varint(UInt64(body.bytes.count))
        payload.raw(body.bytes)
        payload.varint(0)
        payload.raw(afterEndMarker)
        return payload.bytes
    }

    static let origin0 = [BundleOriginInfo(id: source, account: "alice")]
    static let range0 = [KnowledgeRange(origin: source, scope: .private, from: 0, to: 10)]

    /// Replaces header bytes at `offset` and recomputes the header CRC.
    static func patchHeader(_ data: Data, at offset: Int, with bytes: [UInt8]) throws -> Data {
        var all = [UInt8](data)
        let headerLength = try BundleFormat.checkPrefix(Array(all.prefix(14)), totalSize: UInt64(all.count))
        all.replaceSubrange(offset..<(offset + bytes.count), with: bytes)
        var crc = BundleFormat.ByteWriter()
        crc.u32(crc32(all[0..<(headerLength - 4)]))
        all.replaceSubrange((headerLength - 4)..<headerLength, with: crc.bytes)
        return Data(all)
    }

    static func le(_ value: UInt64, _ width: Int) -> [UInt8] {
        (0..<width).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
    }

    static func smallBundle() throws -> (changes: [Change], data: Data) {
        var rng = SeededRNG(seed: 7)
        let changes = randomChanges(count: 25, origins: [source, replica(1), replica(2)], rng: &rng)
        return (changes, try write(changes).data)
    }

    // MARK: - zlib layer

    @Test func zlibRoundTripAndCRC() throws {
        #expect(crc32(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(crc32(Array("6789".utf8), continuing: crc32(Array("12345".utf8))) == 0xCBF4_3926)
        #expect(crc32([UInt8]()) == 0)
        var rng = SeededRNG(seed: 1)
        let input = (0..<300_000).map { i in UInt8(truncatingIfNeeded: i % 251 == 0 ? rng.next() : UInt64(i % 7)) }
        let compressed = try Deflater.compress(input)
        #expect(compressed.count < input.count / 4)
        #expect(compressed.first == 0x78)  // zlib header, 32 KiB window
        #expect(try Inflater.decompress(Data(compressed)) == input)
        // Streaming: feed the deflater in odd pieces and the inflater one byte at a time.
        let deflater = try Deflater()
        var streamed: [UInt8] = []
        var offset = 0
        while offset < input.count {
            let n = min(input.count - offset, 1 + Int(rng.next() % 40_000))
            streamed += try deflater.compress(Array(input[offset..<(offset + n)]))
            offset += n
        }
        streamed += try deflater.finish()
        #expect(deflater.totalIn == UInt64(input.count))
        #expect(deflater.totalOut == UInt64(streamed.count))
        let inflater = try Inflater()
        var output: [UInt8] = []
        var fed = 0
        while !inflater.isFinished {
            if inflater.needsInput {
                #expect(fed < streamed.count)
                inflater.provide(Data([streamed[fed]]))
                fed += 1
            }
            output += try inflater.inflate(maxOutput: 1000)
        }
        try inflater.end()
        #expect(output == input)
        #expect(fed == streamed.count)
        #expect(try Inflater.decompress(Data(try Deflater.compress([UInt8]()))) == [])
    }

    @Test func zlibDetectsTruncationTrailingGarbageAndCorruption() throws {
        let input = [UInt8](repeating: 0x41, count: 10_000) + Array("tail".utf8)
        let compressed = try Deflater.compress(input)
        for cut in [0, 1, 2, compressed.count / 2, compressed.count - 1] {
            #expect(throws: ZlibError.truncated) { try Inflater.decompress(Data(compressed.prefix(cut))) }
        }
        #expect(throws: ZlibError.trailingData(3)) { try Inflater.decompress(Data(compressed + [1, 2, 3])) }
        var badHeader = compressed
        badHeader[0] = 0x79
        #expect(throws: ZlibError.self) { try Inflater.decompress(Data(badHeader)) }
        var badAdler = compressed
        badAdler[badAdler.count - 1] ^= 0x01
        do {
            _ = try Inflater.decompress(Data(badAdler))
            Issue.record("a wrong Adler-32 was accepted")
        } catch ZlibError.corrupt(let message) {
            #expect(message.contains("check"))
        }
    }

    @Test func zlibOutputCap() throws {
        let bomb = try Deflater.compress([UInt8](repeating: 0, count: 4 << 20))
        #expect(bomb.count < 10_000)
        #expect(throws: ZlibError.outputLimitExceeded(100_000)) { try Inflater.decompress(Data(bomb), limit: 100_000) }
        #expect(throws: ZlibError.outputLimitExceeded((4 << 20) - 1)) { try Inflater.decompress(Data(bomb), limit: (4 << 20) - 1) }
        #expect(try Inflater.decompress(Data(bomb), limit: 4 << 20).count == 4 << 20)
    }

    // MARK: - Codecs

    @Test func varintAndZigzag() throws {
        let values: [UInt64] = [0, 1, 127, 128, 255, 300, 16_383, 16_384, 1 << 32, UInt64.max - 1, UInt64.max]
        var w = BundleFormat.ByteWriter()
        for v in values { w.varint(v) }
        var r = BundleFormat.ByteReader(w.bytes, context: "test")
        for v in values { #expect(try r.varint("v") == v) }
        #expect(r.remaining == 0)
        #expect(w.bytes.prefix(3) == [0x00, 0x01, 0x7F])
        for s: Int64 in [0, -1, 1, -2, 2, Int64.min, Int64.max, -123_456_789] {
            #expect(BundleFormat.unzigzag(BundleFormat.zigzag(s)) == s)
        }
        #expect(BundleFormat.zigzag(0) == 0 && BundleFormat.zigzag(-1) == 1 && BundleFormat.zigzag(1) == 2)
        #expect(BundleFormat.zigzag(Int64.min) == UInt64.max)
        // Non-minimal, overlong, unfinished and 65-bit varints are refused.
        for bad: [UInt8] in [[0x80, 0x00], [0xFF], [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
                             [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02]] {
            var reader = BundleFormat.ByteReader(bad, context: "test")
            #expect(throws: ReaderSyncError.self) { try reader.varint("v") }
        }
    }

    // MARK: - Round trips

    @Test func roundTripEveryEntityAndValueType() throws {
        let origins = [Self.source, Self.replica(1), Self.replica(2)]
        var rng = SeededRNG(seed: 42)
        var changes = Self.randomChanges(count: 2_000, origins: origins, rng: &rng)
        // Extremes at the end (each origin's seqs keep increasing).
        let edge = Self.replica(9)
        changes += [
            Change(origin: edge, seq: 1, hlc: .zero, entity: .readState, key: "", field: ChangeField.read, value: .int(Int64.min)),
            Change(origin: edge, seq: 2, hlc: HLCTimestamp(rawValue: UInt64.max), entity: .readState, key: "e\u{301}",
                   field: ChangeField.progress, value: .double(-0.0)),
            Change(origin: edge, seq: 3, hlc: .zero, entity: .readState, key: "\u{E9}", field: ChangeField.saved,
                   value: .double(.nan)),
            Change(origin: edge, seq: UInt64.max, hlc: HLCTimestamp(millis: 1, counter: UInt16.max), entity: .comment,
                   key: "c", field: ChangeField.commentBody, value: .string("")),
        ]
        let (header, data) = try Self.write(changes)
        let reader = try BundleReader(data: data)
        #expect(reader.header == header)
        #expect(reader.totalBytes == data.count)
        #expect(header.formatVersion == 1 && header.schemaVersion == 3 && header.account == "alice")
        #expect(header.changeCount == UInt64(changes.count))
        let back = try Self.readAll(reader)
        Self.expectIdentical(Array(back.dropLast(2)), Array(changes.dropLast(2)))
        // NaN is not equal to itself: compare its bit pattern.
        #expect(back[back.count - 2].value.doubleValue?.bitPattern == Double.nan.bitPattern)
        Self.expectIdentical([back[back.count - 1]], [changes[changes.count - 1]])
        #expect(try reader.next() == nil)
        #expect(try reader.next() == nil)
    }

    @Test func roundTripLargeStringsManyOriginsAndBlocks() throws {
        var rng = SeededRNG(seed: 99)
        let origins = (0..<300).map { i in ReplicaID(bytes: Self.le(UInt64(i) &* 0x9E37_79B9, 8) + Self.le(UInt64(i), 8)) ?? .random() }
        var changes = Self.randomChanges(count: 9_000, origins: origins, rng: &rng)
        // Strings big enough to close blocks by size: 3 MiB of article content, 200 KB of unicode.
        let big = String((0..<(3 << 20)).map { _ in Character(UnicodeScalar(UInt8(0x61 + rng.next() % 26))) })
        let wide = String(repeating: "日本🧑‍🚀é", count: 20_000)
        let extra = Self.replica(0x77)
        changes += [
            Change(origin: extra, seq: 1, hlc: HLCTimestamp(millis: Self.t0, counter: 0), entity: .article, key: wide,
                   field: ChangeField.articleContent, value: .string(big)),
            Change(origin: extra, seq: 2, hlc: HLCTimestamp(millis: Self.t0, counter: 1), entity: .comment, key: "k",
                   field: ChangeField.commentBody, value: .string(wide)),
        ]
        changes += Self.randomChanges(count: 1_000, origins: [extra], rng: &rng).map {
            var c = $0
            c.seq += 10
            return c
        }
        let (header, data) = try Self.write(changes)
        #expect(header.origins.count == 301)

        // The payload really holds several blocks: walk the framing of the inflated payload.
        let payload = try Inflater.decompress(data.suffix(Int(header.payloadLength)))
        #expect(UInt64(payload.count) == header.uncompressedLength)
        var r = BundleFormat.ByteReader(payload, context: "walk")
        var blocks: [Int] = []
        while true {
            let count = try r.varint("count")
            if count == 0 { break }
            blocks.append(Int(count))
            _ = try r.raw(Int(try r.varint("length")), "body")
        }
        #expect(r.remaining == 0)
        #expect(blocks.count >= 4)
        #expect(blocks.allSatisfy { $0 <= BundleFormat.maxChangesPerBlock })
        #expect(blocks.reduce(0, +) == changes.count)

        // Data path and file path.
        Self.expectIdentical(try Self.readAll(data).1, changes)
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("big.rsb")
        let writer = try BundleWriter(source: Self.source, account: "alice", schemaVersion: 3,
                                      origins: Self.originTable(for: changes), ranges: Self.tightRanges(for: changes),
                                      spoolDirectory: dir)
        for (i, change) in changes.enumerated() {
            try writer.append(change)
            if i == changes.count - 1 {
                // The 3 MiB payload no longer fits the in-memory spool.
                let spooled = try FileManager.default.contentsOfDirectory(atPath: dir.path(percentEncoded: false))
                #expect(spooled.contains { $0.hasSuffix(".spool") })
            }
        }
        let fileHeader = try writer.finish(to: url)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path(percentEncoded: false)) == ["big.rsb"])
        #expect(fileHeader == header)
        #expect(try Data(contentsOf: url) == data)
        let fileReader = try BundleReader(url: url)
        #expect(fileReader.header == header)
        #expect(fileReader.totalBytes == data.count)
        Self.expectIdentical(try Self.readAll(fileReader), changes)
    }

    @Test func emptyBundles() throws {
        // No changes, no origins, no ranges.
        let bare = try BundleWriter(source: Self.source, account: "", schemaVersion: 1, origins: [], ranges: [])
        let (header, data) = try bare.finishData()
        #expect(header.changeCount == 0 && header.uncompressedLength == 1)
        let (back, changes) = try Self.readAll(data)
        #expect(back == header && changes.isEmpty)

        // No changes but ranges (the changes were merged away): header survives, file path too.
        let ranges = [KnowledgeRange(origin: Self.source, scope: .shared, from: 5, to: 9),
                      KnowledgeRange(origin: Self.replica(3), scope: .private, from: 0, to: 0)]
        let origins = [BundleOriginInfo(id: Self.source, account: "alice"), BundleOriginInfo(id: Self.replica(3), account: "bob")]
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("empty.rsb")
        try Data("old contents that must be truncated away".utf8 + [UInt8](repeating: 0, count: 5000)).write(to: url)
        let writer = try BundleWriter(source: Self.source, account: "alice", schemaVersion: 2, origins: origins, ranges: ranges)
        let written = try writer.finish(to: url)
        let reader = try BundleReader(url: url)
        #expect(reader.header == written)
        #expect(reader.header.ranges == ranges && reader.header.origins == origins)
        #expect(try reader.next() == nil)
        #expect(reader.totalBytes == (try Data(contentsOf: url)).count)
    }

    /// The realistic case: one account's read state, synced between devices. Bounds the format's size.
    @Test func bytesPerChangeForReadState() throws {
        var rng = SeededRNG(seed: 2025)
        let words = ["trump", "putin", "iran", "ukraine", "election", "market", "climate", "court", "budget", "storm",
                     "vote", "talks", "ceasefire", "rates", "fed", "china", "tariffs", "nato", "summit", "strike",
                     "wildfire", "senate", "house", "ruling", "report", "deal", "oil", "prices", "jobs", "ai",
                     "chips", "border", "health", "vaccine", "school", "police", "protest", "trial", "verdict", "gaza"]
        let sources = ["ap", "reuters", "bbc", "nyt", "guardian", "npr"]
        let phone = Self.source
        let laptop = Self.replica(2)
        var seq: [ReplicaID: UInt64] = [phone: 1200, laptop: 800]
        var millis = Self.t0
        var changes: [Change] = []
        while changes.count < 10_000 {
            let slug = ([sources.randomElement(using: &rng) ?? "ap"]
                        + (0..<Int.random(in: 3...6, using: &rng)).map { _ in words.randomElement(using: &rng) ?? "x" })
                .joined(separator: "-")
            let device = Int.random(in: 0..<4, using: &rng) == 0 ? laptop : phone
            // Like the store: read and saved times are the wall clock the change is stamped with.
            func add(_ field: String, _ value: (UInt64) -> ChangeValue) {
                millis += UInt64.random(in: 500...90_000, using: &rng)
                let s = (seq[device] ?? 0) + 1
                seq[device] = s
                changes.append(Change(origin: device, seq: s, hlc: HLCTimestamp(millis: millis, counter: 0),
                                      entity: .readState, key: slug, field: field, value: value(millis)))
            }
            for _ in 0..<Int.random(in: 0...3, using: &rng) {
                let progress = Double(Int.random(in: 1...99, using: &rng)) / 100
                add(ChangeField.progress) { _ in .double(progress) }
            }
            add(ChangeField.read) { .int(Int64($0)) }
            add(ChangeField.progress) { _ in .double(1) }
            if Int.random(in: 0..<5, using: &rng) == 0 { add(ChangeField.saved) { .int(Int64($0)) } }
            if Int.random(in: 0..<20, using: &rng) == 0 { add(ChangeField.read) { _ in .null } }
        }
        changes = Array(changes.prefix(10_000))
        let (header, data) = try Self.write(changes)
        let perChange = Double(data.count) / Double(changes.count)
        let uncompressedPerChange = Double(header.uncompressedLength) / Double(changes.count)
        print("bundle bytes per change: \(perChange) total (\(data.count) bytes), uncompressed \(uncompressedPerChange)")
        #expect(perChange < 10.0, "bytes per change grew to \(perChange)")
        Self.expectIdentical(try Self.readAll(data).1, changes)
    }

    // MARK: - Refusals: header

    @Test func truncatedAtEveryOffset() throws {
        let (_, data) = try Self.smallBundle()
        for length in 0..<data.count {
            let message = Self.failure { _ = try Self.readAll(data.prefix(length)) }
            #expect(message != nil, "a bundle cut to \(length) of \(data.count) bytes was accepted")
            #expect(message?.hasPrefix("UNEXPECTED") != true, "\(message ?? "")")
        }
        // Slices that do not start at index 0 behave the same.
        let shifted = (Data([9, 9, 9]) + data).dropFirst(3)
        #expect(try Self.readAll(shifted).1.count == 25)
        // The file path reports truncation as such.
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("cut.rsb")
        try data.prefix(data.count - 10).write(to: url)
        let message = Self.failure { _ = try BundleReader(url: url) }
        #expect(message?.hasPrefix("bundle is truncated: header says") == true, "\(message ?? "nil")")
        try Data().write(to: url)
        #expect(Self.failure { _ = try BundleReader(url: url) }?.contains("empty") == true)
    }

    @Test func trailingBytesAfterPayload() throws {
        let (_, data) = try Self.smallBundle()
        let message = Self.failure { _ = try BundleReader(data: data + [0]) }
        #expect(message?.contains("unexpected bytes after") == true, "\(message ?? "nil")")
    }

    @Test func randomBitFlipsAreAllDetected() throws {
        let (changes, data) = try Self.smallBundle()
        var rng = SeededRNG(seed: 0xF11F)
        var accepted = 0
        for _ in 0..<400 {
            var bytes = [UInt8](data)
            let index = Int(rng.next() % UInt64(bytes.count))
            bytes[index] ^= UInt8(1) << (rng.next() % 8)
            let corrupted = Data(bytes)
            do {
                let (_, back) = try Self.readAll(corrupted)
                accepted += 1
                Self.expectIdentical(back, changes)
            } catch let error as ReaderSyncError {
                guard case .invalidBundle = error else {
                    Issue.record("flip at \(index) raised \(error)")
                    continue
                }
            }
        }
        // CRC-32 catches every single-bit error, in the header and in the payload.
        #expect(accepted == 0)
    }

    @Test func wrongMagic() throws {
        let (_, data) = try Self.smallBundle()
        var bytes = [UInt8](data)
        bytes[1] = UInt8(ascii: "X")
        #expect(Self.failure { _ = try BundleReader(data: Data(bytes)) } == "not a ReaderSync bundle (wrong magic)")
        #expect(Self.failure { _ = try BundleReader(data: Data("{\"format\":\"readersync-knowledge/1\"}".utf8)) }
                == "not a ReaderSync bundle (wrong magic)")
        #expect(Self.failure { _ = try BundleReader(data: Data([0x89, 0x52])) }?.hasPrefix("bundle is truncated") == true)
    }

    @Test func newerFormatVersion() throws {
        let (_, data) = try Self.smallBundle()
        // A valid header CRC, so the version check itself decides.
        let newer = try Self.patchHeader(data, at: 8, with: Self.le(7, 2))
        #expect(Self.failure { _ = try BundleReader(data: newer) }
                == "bundle format version 7 is newer than this build supports (1); upgrade ReaderSync")
        // A newer version with a header this build cannot even check is still reported as newer.
        var unreadable = [UInt8](data.prefix(14))
        unreadable.replaceSubrange(8..<10, with: Self.le(2, 2))
        unreadable.replaceSubrange(10..<14, with: Self.le(UInt64(UInt32.max), 4))
        #expect(Self.failure { _ = try BundleReader(data: Data(unreadable)) }?.contains("version 2 is newer") == true)
        // Version 0 is never valid.
        let zero = try Self.patchHeader(data, at: 8, with: Self.le(0, 2))
        #expect(Self.failure { _ = try BundleReader(data: zero) } == "bundle format version 0 is not valid")
        // A corrupted version field with a stale CRC is a checksum error, not a version error.
        var flipped = [UInt8](data)
        flipped[8] = 5
        #expect(Self.failure { _ = try BundleReader(data: Data(flipped)) }?.hasPrefix("bundle header checksum mismatch") == true)
    }

    @Test func payloadChecksumMismatch() throws {
        let (_, data) = try Self.smallBundle()
        var bytes = [UInt8](data)
        bytes[bytes.count - 7] ^= 0x10
        let message = Self.failure { _ = try BundleReader(data: Data(bytes)) }
        #expect(message?.hasPrefix("bundle checksum mismatch (header 0x") == true, "\(message ?? "nil")")
        // The file path checks it too, before returning.
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("bad.rsb")
        try Data(bytes).write(to: url)
        #expect(Self.failure { _ = try BundleReader(url: url) }?.hasPrefix("bundle checksum mismatch") == true)
    }

    @Test func absurdHeaderFields() throws {
        let (_, data) = try Self.smallBundle()
        let cases: [(offset: Int, bytes: [UInt8], expected: String)] = [
            (32, Self.le(1 << 40, 8), "bundle header claims 1099511627776 changes (limit 4294967296)"),
            (40, Self.le(1 << 50, 8), "bundle header claims a payload of 1125899906842624 bytes (limit 1099511627776)"),
            (48, Self.le(1 << 60, 8), "bundle header claims the payload inflates to 1152921504606846976 bytes"),
            (60, Self.le(4_000_000, 4), "bundle header claims 4000000 origins (limit 1000000)"),
            (60, Self.le(900_000, 4), "origins and"),
            (64, Self.le(3_000_000, 4), "ranges (limit 2000000)"),
            (32, Self.le(1_000_000, 8), "ranges cover only"),
            (40, Self.le(1 << 30, 8), "bundle is truncated: header says 1073741824 payload bytes, file has"),
            (48, Self.le(1 << 30, 8), "more than deflate's 1032:1"),
            (48, Self.le(5, 8), "uncompressed bytes (at least 176 needed)"),
            (68, [0xFF, 0xFF, 0xFF, 0xFF, 0x0F], "the source account is 4294967295 bytes long (limit 1024)"),
            (68, [0x06], "bundle header is"),
        ]
        for c in cases {
            let patched = try Self.patchHeader(data, at: c.offset, with: c.bytes)
            let message = Self.failure { _ = try Self.readAll(patched) }
            #expect(message?.contains(c.expected) == true, "offset \(c.offset): \(message ?? "accepted")")
        }
        // A header length past the limit, and one shorter than any header.
        for length: UInt64 in [UInt64(UInt32.max), 20] {
            var bytes = [UInt8](data)
            bytes.replaceSubrange(10..<14, with: Self.le(length, 4))
            #expect(Self.failure { _ = try BundleReader(data: Data(bytes)) }?.hasPrefix("bundle header length \(length) is invalid") == true)
        }
    }

    @Test func invalidHeaderTables() throws {
        let a = BundleOriginInfo(id: Self.source, account: "alice")
        let b = BundleOriginInfo(id: Self.replica(5), account: "bob")
        let good = KnowledgeRange(origin: a.id, scope: .shared, from: 0, to: 3)
        let cases: [([BundleOriginInfo], [KnowledgeRange], String)] = [
            ([a, a], [], "is listed twice"),
            ([a], [KnowledgeRange(origin: b.id, scope: .shared, from: 0, to: 3)], "not in the origin table"),
            ([a], [KnowledgeRange(origin: a.id, scope: .shared, from: 4, to: 3)], "runs backwards"),
            ([a, b], [good, good], "has two ranges"),
            ([BundleOriginInfo(id: a.id, account: String(repeating: "x", count: 1025))], [], "bytes long (limit 1024)"),
        ]
        for (origins, ranges, expected) in cases {
            // The writer refuses to write such a header…
            let message = Self.failure {
                _ = try BundleWriter(source: Self.source, account: "alice", schemaVersion: 1, origins: origins, ranges: ranges)
            }
            #expect(message?.contains(expected) == true, "\(message ?? "accepted")")
            // …and the reader refuses to read one.
            if expected != "not in the origin table" {
                let forged = try Self.handMade(payload: [0], changeCount: 0, origins: origins, ranges: ranges)
                let readMessage = Self.failure { _ = try BundleReader(data: forged) }
                #expect(readMessage?.contains(expected) == true, "\(readMessage ?? "accepted")")
            }
        }
    }

    // MARK: - Refusals: payload (hand-made, with valid checksums)

    @Test func handMadePayloadDecodes() throws {
        // The spec's column layout, written by hand, decodes: the builder below is the spec.
        let data = try Self.handMade(payload: Self.oneChangePayload(), changeCount: 1, origins: Self.origin0, ranges: Self.range0)
        let (_, changes) = try Self.readAll(data)
        #expect(changes == [Change(origin: Self.source, seq: 1, hlc: HLCTimestamp(millis: Self.t0, counter: 0),
                                   entity: .readState, key: "a1", field: "read", value: .int(1))])
        // Tag 6: an int relative to the change's own HLC milliseconds.
        let nearTime = try Self.handMade(payload: Self.oneChangePayload(tag: 6, value: [0x03]), changeCount: 1,
                                         origins: Self.origin0, ranges: Self.range0)
        #expect(try Self.readAll(nearTime).1.first?.value == .int(Int64(Self.t0) - 2))
    }

    @Test func invalidPayloadContents() throws {
        let cases: [(payload: [UInt8], expected: String)] = [
            (Self.oneChangePayload(entity: 9), "change 1: unknown entity kind 9"),
            (Self.oneChangePayload(entity: 0), "change 1: unknown entity kind 0"),
            (Self.oneChangePayload(tag: 7, value: []), "change 1: unknown value type 7"),
            (Self.oneChangePayload(originIndex: 1), "change 1: origin index 1 is not in the origin table (1 origins)"),
            (Self.oneChangePayload(seq: 11), "change 1: seq 11 of origin \(Self.source) (private) is outside the bundle's range (0, 10]"),
            (Self.oneChangePayload(seq: 0), "is outside the bundle's range (0, 10]"),
            (Self.oneChangePayload(entity: 1), "change 1: field 'read' is not allowed for article"),
            (Self.oneChangePayload(field: "foo"), "change 1: field 'foo' is not allowed for readState"),
            (Self.oneChangePayload(entity: 2, field: ChangeField.commentBody), "the bundle has no range for origin"),
            (Self.oneChangePayload(keyLength: 1 << 40), "the key of change 1 is 1099511627776 bytes long (limit 16777216)"),
            (Self.oneChangePayload(rawKey: [0xC3, 0x28]), "the key of change 1 is not valid UTF-8"),
            (Self.oneChangePayload(rawKey: [0xED, 0xA0, 0x80]), "is not valid UTF-8"),  // a UTF-16 surrogate
            (Self.oneChangePayload(tag: 4, value: [1, 2, 3]), "runs past the end"),
            (Self.oneChangePayload(value: [0x02, 0x00]), "1 unexpected bytes after the last column"),
            (Self.oneChangePayload(afterEndMarker: [0]), "1 bytes follow the end marker"),
            ([0], "it holds 0 changes, but the header says 1"),
            ([1, 1, 0, 0], "block 1 is 1 bytes long"),
            ([0x80, 0x40, 7, 0, 0, 0, 0, 0, 0, 0, 0], "block 1 claims 8192 changes (limit 4096)"),
        ]
        for c in cases {
            let data = try Self.handMade(payload: c.payload, changeCount: 1, origins: Self.origin0, ranges: Self.range0,
                                         uncompressedLength: max(8, UInt64(c.payload.count)))
            let message = Self.failure { _ = try Self.readAll(data) }
            #expect(message?.contains(c.expected) == true, "expected '\(c.expected)', got \(message ?? "acceptance")")
        }
    }

    @Test func streamEndingEarlyOrLateAndLengthMismatch() throws {
        let payload = Self.oneChangePayload()
        // Header understates the uncompressed length: the inflater's cap fires.
        let capped = try Self.handMade(payload: payload, changeCount: 1, origins: Self.origin0, ranges: Self.range0,
                                       uncompressedLength: UInt64(payload.count) - 1)
        #expect(Self.failure { _ = try Self.readAll(capped) }?.contains("inflates to more than") == true)
        // Header overstates it.
        let over = try Self.handMade(payload: payload, changeCount: 1, origins: Self.origin0, ranges: Self.range0,
                                     uncompressedLength: UInt64(payload.count) + 5)
        #expect(Self.failure { _ = try Self.readAll(over) }?.contains("but the header says \(payload.count + 5)") == true)
        // No end marker: the zlib stream ends first.
        let noEnd = try Self.handMade(payload: Array(payload.dropLast()), changeCount: 1, origins: Self.origin0, ranges: Self.range0)
        #expect(Self.failure { _ = try Self.readAll(noEnd) }?.contains("ends before the end marker") == true)
        // Garbage after the zlib stream but inside the payload (CRC fixed up).
        let compressed = try Deflater.compress(payload) + [0xAB]
        let header = BundleHeader(schemaVersion: 1, source: Self.source, account: "alice", origins: Self.origin0,
                                  ranges: Self.range0, changeCount: 1, payloadLength: UInt64(compressed.count),
                                  uncompressedLength: UInt64(payload.count), checksum: crc32(compressed))
        let trailing = Data(try BundleFormat.encodeHeader(header) + compressed)
        #expect(Self.failure { _ = try Self.readAll(trailing) }?.contains("1 bytes follow the end of the zlib stream") == true)
        // A truncated zlib stream (CRC fixed up).
        let cut = Array(try Deflater.compress(payload).dropLast(3))
        let cutHeader = BundleHeader(schemaVersion: 1, source: Self.source, account: "alice", origins: Self.origin0,
                                     ranges: Self.range0, changeCount: 1, payloadLength: UInt64(cut.count),
                                     uncompressedLength: UInt64(payload.count), checksum: crc32(cut))
        let truncated = Data(try BundleFormat.encodeHeader(cutHeader) + cut)
        #expect(Self.failure { _ = try Self.readAll(truncated) }?.contains("ends before the zlib stream does") == true)
    }

    @Test func seqsMustIncreasePerOriginAndScope() throws {
        // Two changes of one origin and scope with the same seq, written by hand (seq delta 0).
        var body = BundleFormat.ByteWriter()
        body.raw([0, 0])                                       // origins
        body.raw([0x0A, 0x00])                                 // seqs: 5, then +0
        body.varint(BundleFormat.zigzag(Int64(Self.t0)) << 1)  // hlcs
        body.varint(0)
        body.raw([3, 3])                                       // entities
        body.raw([0, 1, 0x61, 0])                              // keys: "a", then ref 0
        body.raw([0, 4] + Array("read".utf8) + [0])            // fields: "read", then ref 0
        body.raw([0, 0])                                       // tags: null, null
        let payload: [UInt8] = [2, UInt8(body.bytes.count)] + body.bytes + [0]
        let data = try Self.handMade(payload: payload, changeCount: 2, origins: Self.origin0, ranges: Self.range0)
        let reader = try BundleReader(data: data)
        let message = Self.failure { _ = try Self.readAll(reader) }
        #expect(message?.contains("change 2: seq 5 of origin") == true, "\(message ?? "accepted")")
        #expect(message?.contains("does not follow the previous one (5)") == true)
        // The reader stays failed.
        #expect(Self.failure { _ = try reader.next() } == message)
    }

    @Test func writerRefusesInvalidChanges() throws {
        let other = Self.replica(0x33)
        let ranges = [KnowledgeRange(origin: Self.source, scope: .private, from: 10, to: 20),
                      KnowledgeRange(origin: Self.source, scope: .shared, from: 0, to: 20)]
        func change(_ seq: UInt64, origin: ReplicaID = Self.source, entity: EntityKind = .readState,
                    field: String = ChangeField.read, key: String = "k", value: ChangeValue = .null) -> Change {
            Change(origin: origin, seq: seq, hlc: HLCTimestamp(millis: Self.t0, counter: 0), entity: entity, key: key,
                   field: field, value: value)
        }
        let cases: [([Change], String)] = [
            ([change(12, origin: other)], "change 1: origin \(other) is not in the bundle's origin table"),
            ([change(10)], "change 1: seq 10 of origin \(Self.source) (private) is outside the bundle's range (10, 20]"),
            ([change(21)], "is outside the bundle's range (10, 20]"),
            ([change(12), change(12)], "change 2: seq 12 of origin"),
            ([change(12), change(15), change(11)], "change 3: seq 11"),
            ([change(12, field: "foo")], "change 1: field 'foo' is not allowed for readState"),
            ([change(12, entity: .article)], "field 'read' is not allowed for article"),
        ]
        for (changes, expected) in cases {
            let writer = try BundleWriter(source: Self.source, account: "alice", schemaVersion: 1,
                                          origins: Self.origin0, ranges: ranges)
            let message = Self.failure { for c in changes { try writer.append(c) } }
            #expect(message?.contains(expected) == true, "expected '\(expected)', got \(message ?? "acceptance")")
        }
        // Different scopes of one origin are independent sequences; seqs may interleave.
        let writer = try BundleWriter(source: Self.source, account: "alice", schemaVersion: 1, origins: Self.origin0, ranges: ranges)
        let mixed = [change(15), change(3, entity: .comment, field: ChangeField.commentBody, value: .string("hi")),
                     change(16), change(4, entity: .article, field: ChangeField.articleContent)]
        for c in mixed { try writer.append(c) }
        let (_, data) = try writer.finishData()
        Self.expectIdentical(try Self.readAll(data).1, mixed)
        #expect(Self.failure { try writer.append(change(17)) } != nil)
        #expect(Self.failure { _ = try writer.finishData() } != nil)
        // Strings past 16 MiB are refused before anything is written.
        let huge = try BundleWriter(source: Self.source, account: "alice", schemaVersion: 1, origins: Self.origin0, ranges: ranges)
        let tooLong = String(repeating: "x", count: BundleFormat.maxStringBytes + 1)
        #expect(Self.failure { try huge.append(change(12, key: tooLong)) }?.contains("the key is 16777217 bytes") == true)
    }

    // MARK: - Robustness with valid checksums

    /// Bit flips inside the *uncompressed* payload, recompressed with correct checksums: the decoder's own
    /// validation is all that stands between them and the store. Must throw or decode, never crash.
    @Test func payloadFlipsBehindValidChecksums() throws {
        let (header, data) = try Self.write(try Self.smallBundle().changes)
        let payload = try Inflater.decompress(data.suffix(Int(header.payloadLength)))
        var rng = SeededRNG(seed: 0xBEEF)
        var refused = 0
        for round in 0..<600 {
            var bytes = payload
            let flips = 1 + Int(rng.next() % 3)
            for _ in 0..<flips {
                bytes[Int(rng.next() % UInt64(bytes.count))] ^= UInt8(1) << (rng.next() % 8)
            }
            if round % 10 == 0 { bytes = Array(bytes.prefix(Int(rng.next() % UInt64(bytes.count)))) }
            let forged = try Self.handMade(payload: bytes, changeCount: header.changeCount, origins: header.origins,
                                           ranges: header.ranges, uncompressedLength: max(UInt64(bytes.count), 176))
            let message = Self.failure { _ = try Self.readAll(forged) }
            if let message {
                #expect(!message.hasPrefix("UNEXPECTED"), "\(message)")
                refused += 1
            }
        }
        #expect(refused > 300)
    }

    // MARK: - File errors

    @Test func missingFileIsAStorageError() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("no-such-bundle-\(UUID().uuidString).rsb")
        do {
            _ = try BundleReader(url: url)
            Issue.record("a missing file was read")
        } catch ReaderSyncError.storage(let message) {
            #expect(message.contains("cannot open bundle file"))
        }
    }

    // MARK: - The spec's worked example

    /// `Schemas/bundle-format.md` shows this bundle byte by byte. The uncompressed payload is normative;
    /// the compressed bytes are what this platform's zlib produced when the spec was written.
    static let exampleUncompressed = "02 2f 00 00 02 02 80 f0 86 85 f4 cb 01 01 01 03 03 00 02 61 31 00 00 04 72 65 61 64 01 08 70 72 6f 67 72 65 73 73 06 04 00 00 00 00 00 00 00 e0 3f 00"

    static func exampleChanges() -> [Change] {
        let me = ReplicaID(string: "00112233-4455-6677-8899-aabbccddeeff") ?? .random()
        return [
            Change(origin: me, seq: 1, hlc: HLCTimestamp(millis: 1_751_544_000_000, counter: 0), entity: .readState,
                   key: "a1", field: ChangeField.read, value: .int(1_751_544_000_000)),
            Change(origin: me, seq: 2, hlc: HLCTimestamp(millis: 1_751_544_000_000, counter: 1), entity: .readState,
                   key: "a1", field: ChangeField.progress, value: .double(0.5)),
        ]
    }

    static func exampleBundle() throws -> (header: BundleHeader, data: Data) {
        let changes = exampleChanges()
        let me = changes[0].origin
        let writer = try BundleWriter(source: me, account: "alice", schemaVersion: 1,
                                      origins: [BundleOriginInfo(id: me, account: "alice")],
                                      ranges: [KnowledgeRange(origin: me, scope: .private, from: 0, to: 2)])
        for c in changes { try writer.append(c) }
        return try writer.finishData()
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { String(format: "%02x", $0) }.joined(separator: " ")
    }

    static func bytes(hex: String) -> [UInt8] {
        hex.split(separator: " ").compactMap { UInt8($0, radix: 16) }
    }

    @Test func specWorkedExample() throws {
        let (header, data) = try Self.exampleBundle()
        print("worked example bundle (\(data.count) bytes):\n\(Self.hex(data))")
        let payload = try Inflater.decompress(data.suffix(Int(header.payloadLength)))
        print("worked example uncompressed payload (\(payload.count) bytes):\n\(Self.hex(payload))")
        #expect(Self.hex(payload) == Self.exampleUncompressed)
        // The spec's complete bundle decodes to the example changes with any zlib.
        let (specHeader, specChanges) = try Self.readAll(Data(Self.bytes(hex: Self.exampleBundleHex)))
        #expect(specHeader.changeCount == 2 && specHeader.account == "alice")
        #expect(specChanges == Self.exampleChanges())
    }

    static let exampleBundleHex = """
        89 52 53 42 0d 0a 1a 0a 01 00 79 00 00 00 01 00 00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff
        02 00 00 00 00 00 00 00 36 00 00 00 00 00 00 00 32 00 00 00 00 00 00 00 1c e4 3b 9f 01 00 00 00
        01 00 00 00 05 61 6c 69 63 65 00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff 05 61 6c 69 63 65
        00 00 00 00 01 00 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00 75 f8 5f 07 78 9c 63 d2 67 60 60
        62 6a f8 d0 d6 fa e5 34 23 23 23 33 33 03 53 a2 21 03 03 4b 51 6a 62 0a 23 47 41 51 7e 7a 51 6a
        71 31 1b 0b 03 04 3c b0 67 00 00 31 43 0b 54
        """.replacingOccurrences(of: "\n", with: " ")
}
