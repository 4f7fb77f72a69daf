import Foundation
import Testing
@testable import ReaderSync

/// The delta-bundle format (`Schemas/bundle-format.md`): zlib layer, codecs, round trips, size, the spec's worked
/// examples, format 1 still read, and refusal of every kind of bad input.
@Suite("Bundle format")
struct BundleFormatTests {
    // MARK: - Helpers

    typealias SeededRNG = SeededRandom

    static func replica(_ n: UInt8) -> ReplicaID {
        ReplicaID(bytes: [UInt8](repeating: n, count: 15) + [n &+ 1]) ?? ReplicaID.random()
    }

    static let source = replica(0xA0)
    static let t0: UInt64 = 1_751_544_000_000  // 2025-07-03T12:00:00Z
    static let maxSeq = UInt64(Int64.max)

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

    /// Writes `changes` (tables computed from them unless given) and returns the bundle.
    static func write(_ changes: [Change], origins: [BundleOriginInfo]? = nil, ranges: [KnowledgeRange]? = nil,
                      acknowledgements: [BundleAcknowledgement] = [], writtenAt: Int64? = nil,
                      source: ReplicaID = source) throws -> (header: BundleHeader, data: Data) {
        let writer = try BundleWriter(source: source, account: "alice", schemaVersion: 3, writtenAtMillis: writtenAt,
                                      origins: origins ?? originTable(for: changes),
                                      ranges: ranges ?? tightRanges(for: changes), acknowledgements: acknowledgements)
        for change in changes { try writer.append(change) }
        return try writer.finishData()
    }

    /// The (replica, account) pairs of `changes`, in first-appearance order.
    static func originTable(for changes: [Change]) -> [BundleOriginInfo] {
        var seen = Set<BundleOriginInfo>()
        return changes.compactMap { c in
            let info = BundleOriginInfo(id: c.origin, account: c.account)
            return seen.insert(info).inserted ? info : nil
        }
    }

    /// Ranges `(min seq - 1, max seq]` per origin and scope, in first-appearance order.
    static func tightRanges(for changes: [Change]) -> [KnowledgeRange] {
        var order: [Knowledge.Key] = []
        var bounds: [Knowledge.Key: (UInt64, UInt64)] = [:]
        for c in changes {
            let key = Knowledge.Key(origin: c.origin, account: c.account, scope: c.scope)
            if let (lo, hi) = bounds[key] {
                bounds[key] = (min(lo, c.seq), max(hi, c.seq))
            } else {
                order.append(key)
                bounds[key] = (c.seq, c.seq)
            }
        }
        return order.compactMap { key in
            bounds[key].map { KnowledgeRange(origin: key.origin, account: key.account, scope: key.scope, from: $0.0 - 1,
                                             to: $0.1, toIncarnation: UInt64($0.1) &* 0x9E37_79B9) }
        }
    }

    static let fieldsByEntity: [EntityKind: [String]] = [
        .article: [ChangeField.articleContent],
        .comment: [ChangeField.commentCreated, ChangeField.commentBody, ChangeField.commentDeleted],
        .readState: [ChangeField.read, ChangeField.progress, ChangeField.saved],
    ]

    static let sampleStrings = ["", "a", "héllo wörld", "e\u{301}", "\u{E9}", "日本語のテキスト", "🧑‍🚀🚀", "\u{0}nul",
                                "quote\"back\\slash", String(repeating: "x", count: 300)]

    /// Doubles that exercise every branch of the decimal choice, and NaN payloads only tag 4 keeps.
    static let sampleDoubles: [Double] = [
        0.0, -0.0, 1.0, 0.5, 0.25, 0.37, 0.1 + 0.2, 1e-15, 123_456.789, -42.5, .pi, 9_007_199_254_740_992, 1e300,
        .leastNonzeroMagnitude, .greatestFiniteMagnitude, .infinity, -.infinity,
        Double(bitPattern: 0x7FF8_0000_0000_0001), Double(bitPattern: 0xFFF8_0000_0000_0000),
        Double(bitPattern: 0x7FF0_0000_0000_0001), Double(bitPattern: 0x7FFF_FFFF_FFFF_FFFF),
    ]

    /// Random changes from `origins` (pairs: one replica id may be listed under two accounts): every entity, field
    /// and value type, HLCs that wander both ways, keys shared across the whole bundle.
    static func randomChanges(count: Int, origins: [BundleOriginInfo], rng: inout SeededRNG) -> [Change] {
        var nextSeq: [BundleOriginInfo: UInt64] = [:]
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
            case 2: value = .int([Int64.min, Int64.max, 0, -1, Int64(millis), Int64(millis) + 70_000,
                                  Int64.random(in: -1000...1000, using: &rng)].randomElement(using: &rng) ?? 0)
            case 3: value = .double(sampleDoubles.randomElement(using: &rng) ?? 0)
            case 4: value = .string(sampleStrings.randomElement(using: &rng) ?? "")
            default: value = .string("{\"id\":\"\(UInt32.random(in: 0...UInt32.max, using: &rng))\"}")
            }
            let key = Bool.random(using: &rng)
                ? "article-\(Int.random(in: 0..<50, using: &rng))"
                : (sampleStrings.randomElement(using: &rng) ?? "")
            changes.append(Change(origin: origin.id, account: origin.account, seq: seq,
                                  hlc: HLCTimestamp(millis: millis, counter: counter), entity: entity, key: key,
                                  field: field, value: value))
        }
        return changes
    }

    /// Exact equality, including the UTF-8 bytes of strings (Swift's `==` treats "é" and "e\u{301}" alike) and
    /// the bits of doubles (NaN is not equal to itself; -0.0 equals 0.0).
    static func same(_ x: Change, _ y: Change) -> Bool {
        let values: Bool
        switch (x.value, y.value) {
        case let (.double(a), .double(b)): values = a.bitPattern == b.bitPattern
        case let (.string(a), .string(b)): values = sameBytes(a, b)
        default: values = x.value == y.value
        }
        return values && x.origin == y.origin && sameBytes(x.account, y.account) && x.seq == y.seq
            && x.hlc == y.hlc && x.entity == y.entity && sameBytes(x.key, y.key) && sameBytes(x.field, y.field)
    }

    /// Whether two strings hold the same UTF-8 bytes (a memcmp: fast for megabytes in debug builds too).
    static func sameBytes(_ a: String, _ b: String) -> Bool {
        var a = a
        var b = b
        return a.withUTF8 { pa in
            b.withUTF8 { pb in
                guard pa.count == pb.count else { return false }
                guard let x = pa.baseAddress, let y = pb.baseAddress else { return true }
                return memcmp(x, y, pa.count) == 0
            }
        }
    }

    static func expectIdentical(_ a: [Change], _ b: [Change], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(a.count == b.count, sourceLocation: sourceLocation)
        for (i, (x, y)) in zip(a, b).enumerated() where !same(x, y) {
            Issue.record("change \(i + 1): \(x) != \(y)", sourceLocation: sourceLocation)
            return
        }
    }

    static func le(_ value: UInt64, _ width: Int) -> [UInt8] {
        (0..<width).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { String(format: "%02x", $0) }.joined(separator: " ")
    }

    static func bytes(hex: String) -> [UInt8] {
        hex.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { UInt8($0, radix: 16) }
    }

    /// The inflated payload of a bundle.
    static func inflated(_ data: Data) throws -> [UInt8] {
        let length = try BundleFormat.checkPrefix(Array(data.prefix(14)), totalSize: UInt64(data.count))
        return try Inflater.decompress(Data(data.dropFirst(length)))
    }

    // MARK: Hand-made bundles, spelled out as the spec says

    /// One format-2 block, column by column (`Schemas/bundle-format.md` §5). The default is one change: origin 0,
    /// seq 1, hlc t0#0, read state "a1", `read` = int 1 (tag 3, zigzag 2).
    struct SpecBlock {
        var count: Int?
        var origins: [UInt64] = [0]
        var seqDeltas: [Int64] = [1]
        var hlcBase: UInt64 = BundleFormatTests.t0
        var hlcWidth: Int?
        var hlcEntries: [UInt64] = [0]
        var counters: [UInt64] = []
        var entities: [UInt8] = [3]
        var keyRefs: [UInt64] = [0]
        var keyTexts: [[UInt8]] = [Array("a1".utf8)]
        var keyLengths: [UInt64]?
        var fields: [UInt8] = [5]
        var tags: [UInt8] = [3]
        var values: [UInt8] = [0x02]

        var body: [UInt8] {
            var w = BundleFormat.ByteWriter()
            for o in origins { w.varint(o) }
            for s in seqDeltas { w.signed(s) }
            w.varint(hlcBase)
            let widest = hlcEntries.map { (64 - $0.leadingZeroBitCount + 7) / 8 }.max() ?? 1
            let width = hlcWidth ?? max(1, widest)
            w.u8(UInt8(truncatingIfNeeded: width))
            for plane in 0..<width {
                for e in hlcEntries { w.u8(UInt8(truncatingIfNeeded: e >> UInt64(8 * plane))) }
            }
            for c in counters { w.varint(c) }
            w.raw(entities)
            for r in keyRefs { w.varint(r) }
            for (i, text) in keyTexts.enumerated() {
                w.varint(keyLengths?[i] ?? UInt64(text.count))
                w.raw(text)
            }
            w.raw(fields)
            w.raw(tags)
            w.raw(values)
            return w.bytes
        }

        /// `count`, body length, body.
        var framed: [UInt8] {
            var w = BundleFormat.ByteWriter()
            w.varint(UInt64(count ?? origins.count))
            w.varint(UInt64(body.count))
            w.raw(body)
            return w.bytes
        }

        /// A whole uncompressed payload: these blocks, the end marker, then `after`.
        static func payload(_ blocks: [SpecBlock], after: [UInt8] = []) -> [UInt8] {
            blocks.flatMap(\.framed) + [0] + after
        }
    }

    static let origin0 = [BundleOriginInfo(id: source, account: "alice")]
    static let range0 = [KnowledgeRange(origin: source, account: "alice", scope: .private, from: 0, to: 10)]

    /// A bundle around a hand-made uncompressed payload, with correct lengths and checksums.
    static func handMade(payload: [UInt8], changeCount: UInt64, origins: [BundleOriginInfo] = origin0,
                         ranges: [KnowledgeRange] = range0, uncompressedLength: UInt64? = nil,
                         version: UInt16 = 2, trailingCompressed: [UInt8] = [], cut: Int = 0) throws -> Data {
        let compressed = Array(try Deflater.compress(payload).dropLast(cut)) + trailingCompressed
        let header = BundleHeader(formatVersion: version, schemaVersion: 1, source: source, account: "alice",
                                  origins: origins, ranges: ranges, changeCount: changeCount,
                                  payloadLength: UInt64(compressed.count),
                                  uncompressedLength: uncompressedLength ?? max(UInt64(payload.count), 7 * changeCount + 1),
                                  checksum: crc32(compressed))
        return Data(try BundleFormat.encodeHeader(header) + compressed)
    }

    /// Replaces header bytes at `offset` and recomputes the header CRC.
    static func patchHeader(_ data: Data, at offset: Int, with bytes: [UInt8]) throws -> Data {
        var all = [UInt8](data)
        let headerLength = Int(UInt32(all[10]) | UInt32(all[11]) << 8 | UInt32(all[12]) << 16 | UInt32(all[13]) << 24)
        all.replaceSubrange(offset..<(offset + bytes.count), with: bytes)
        all.replaceSubrange((headerLength - 4)..<headerLength, with: le(UInt64(crc32(all[0..<(headerLength - 4)])), 4))
        return Data(all)
    }

    // MARK: Reading written payloads back by the spec's layout

    /// One block of a written payload, split into the spec's columns by an independent walker.
    struct WrittenBlock {
        var count: Int
        var columns: [(name: String, bytes: [UInt8])]
        var hlcWidth: Int
        var keyRefs: [UInt64]
        var keyTexts: [String]
        var tags: [UInt8]

        func column(_ name: String) -> [UInt8] { columns.first { $0.name == name }?.bytes ?? [] }
    }

    static let columnNames = ["origin", "seq", "hlc", "entity", "key", "key text", "field", "tag", "value"]

    static func walk(_ payload: [UInt8]) throws -> [WrittenBlock] {
        var r = BundleFormat.ByteReader(payload, context: "walk")
        var blocks: [WrittenBlock] = []
        while true {
            let count = Int(try r.varint("count"))
            if count == 0 { break }
            let body = Array(try r.raw(Int(try r.varint("length")), "body"))
            var b = BundleFormat.ByteReader(body, context: "walk body")
            var marks: [Int] = [0]
            for _ in 0..<count { _ = try b.varint("origin") }
            marks.append(b.position)
            for _ in 0..<count { _ = try b.varint("seq") }
            marks.append(b.position)
            _ = try b.varint("base")
            let width = Int(try b.u8("width"))
            let planes = Array(try b.raw(width * count, "planes"))
            for i in 0..<count where planes[i] & 1 == 1 { _ = try b.varint("counter") }
            marks.append(b.position)
            _ = try b.raw(count, "entities")
            marks.append(b.position)
            var refs: [UInt64] = []
            for _ in 0..<count { refs.append(try b.varint("key")) }
            marks.append(b.position)
            var texts: [String] = []
            for _ in refs.filter({ $0 == 0 }) { texts.append(try b.string(limit: 1 << 20, "key text")) }
            marks.append(b.position)
            _ = try b.raw(count, "fields")
            marks.append(b.position)
            let tags = Array(try b.raw(count, "tags"))
            marks.append(b.position)
            for tag in tags {
                switch tag {
                case 3, 6: _ = try b.varint("int")
                case 4: _ = try b.raw(8, "double")
                case 5: _ = try b.string(limit: 16 << 20, "string")
                case 7: _ = try b.varint("m"); _ = try b.u8("e")
                default: break
                }
            }
            marks.append(b.position)
            #expect(b.remaining == 0)
            let columns = columnNames.indices.map { (columnNames[$0], Array(body[marks[$0]..<marks[$0 + 1]])) }
            blocks.append(WrittenBlock(count: count, columns: columns, hlcWidth: width, keyRefs: refs, keyTexts: texts,
                                       tags: tags))
        }
        #expect(r.remaining == 0)
        return blocks
    }

    /// 3 MiB of printable ASCII that deflate cannot shrink below 1 MiB (seeded): 64 KiB of noise repeated, which
    /// deflate's 32 KiB window cannot see. Built once.
    static let noise: String = {
        var rng = SeededRNG(seed: 0x0015E)
        let block = (0..<(64 << 10)).map { _ in UInt8(0x21 + rng.next() % 90) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(48 * block.count)
        for _ in 0..<48 { bytes.append(contentsOf: block) }
        return String(decoding: bytes, as: UTF8.self)
    }()

    static func smallBundle() throws -> (changes: [Change], data: Data) {
        var rng = SeededRNG(seed: 7)
        let origins = [BundleOriginInfo(id: source, account: "alice"), BundleOriginInfo(id: replica(1), account: "bob"),
                       BundleOriginInfo(id: replica(1), account: "carol")]
        let changes = randomChanges(count: 25, origins: origins, rng: &rng)
        return (changes, try write(changes, acknowledgements: [
            BundleAcknowledgement(origin: replica(9), account: "alice", scope: .private, seq: 12, incarnation: 77)]).data)
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
        // Non-minimal, unfinished and 65-bit varints are refused, with the spec's messages.
        let bad: [([UInt8], String)] = [
            ([0x80, 0x00], "test: v is a varint with redundant trailing zero groups"),
            ([0xFF], "test: v runs past the end (unfinished varint)"),
            ([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], "test: v is a varint larger than 64 bits"),
            ([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02], "test: v is a varint larger than 64 bits"),
        ]
        for (bytes, message) in bad {
            var reader = BundleFormat.ByteReader(bytes, context: "test")
            #expect(Self.failure { _ = try reader.varint("v") } == message)
        }
    }

    @Test func decimalChoice() throws {
        func decimal(_ d: Double) -> String { BundleFormat.decimal(d).map { "\($0.0)e-\($0.1)" } ?? "none" }
        // The spec's examples.
        #expect(decimal(0.5) == "5e-1")
        #expect(decimal(1.0) == "1e-0")
        #expect(decimal(0.37) == "37e-2")
        #expect(decimal(-42.5) == "-425e-1")
        #expect(decimal(0) == "0e-0")
        #expect(decimal(9_007_199_254_740_992) == "9007199254740992e-0")
        // π is a decimal too, but a long one: the writer keeps its 8 bytes (tag 4; see roundTripEveryEntityAndValueType).
        #expect(decimal(.pi) == "3141592653589793e-15")
        // Not decimals: -0.0, NaN, infinities; and values whose shortest decimal is not exact within e ≤ 15.
        for d in [-0.0, .nan, .infinity, -.infinity, 0.1 + 0.2, .leastNonzeroMagnitude, 1e300] {
            #expect(BundleFormat.decimal(d) == nil, "\(d)")
        }
        // Whenever it answers, m / 10^e gives back exactly the bits.
        var rng = SeededRNG(seed: 11)
        for _ in 0..<20_000 {
            let d = [Double(Int.random(in: -100_000...100_000, using: &rng)) / [1, 10, 100, 1000, 1e6][Int(rng.next() % 5)],
                     Double(bitPattern: rng.next()), Double.random(in: 0...1, using: &rng)][Int(rng.next() % 3)]
            if let (m, e) = BundleFormat.decimal(d) {
                #expect(m.magnitude <= 1 << 53 && e <= 15)
                #expect((Double(m) / BundleFormat.powersOfTen[Int(e)]).bitPattern == d.bitPattern, "\(d)")
            }
        }
    }

    // MARK: - Round trips

    @Test func roundTripEveryEntityAndValueType() throws {
        // One replica id under two accounts: two origins.
        let origins = [BundleOriginInfo(id: Self.source, account: "alice"), BundleOriginInfo(id: Self.replica(1), account: "bob"),
                       BundleOriginInfo(id: Self.replica(1), account: "bob-work"), BundleOriginInfo(id: Self.replica(2), account: "é")]
        var rng = SeededRNG(seed: 42)
        var changes = Self.randomChanges(count: 2_000, origins: origins, rng: &rng)
        // Extremes (each origin's seqs keep increasing): the largest seq, the widest hlc, every NaN kind.
        let edge = Self.replica(9)
        func extreme(_ seq: UInt64, _ hlc: HLCTimestamp, _ entity: EntityKind, _ key: String, _ field: String,
                     _ value: ChangeValue) -> Change {
            Change(origin: edge, account: "edge", seq: seq, hlc: hlc, entity: entity, key: key, field: field, value: value)
        }
        changes += [
            extreme(1, .zero, .readState, "", ChangeField.read, .int(Int64.min)),
            extreme(2, HLCTimestamp(rawValue: UInt64.max), .readState, "e\u{301}", ChangeField.progress, .double(-0.0)),
            extreme(3, .zero, .readState, "\u{E9}", ChangeField.saved, .int(Int64.max)),
            extreme(4, HLCTimestamp(millis: (1 << 48) - 1, counter: 0), .comment, "c", ChangeField.commentBody, .string("")),
        ]
        for (i, d) in Self.sampleDoubles.enumerated() {
            changes.append(extreme(5 + UInt64(i), HLCTimestamp(millis: UInt64(i), counter: UInt16(i)), .readState, "d\(i)",
                                   ChangeField.progress, .double(d)))
        }
        changes.append(extreme(Self.maxSeq, .zero, .article, String(repeating: "k", count: BundleFormat.maxKeyBytes),
                               ChangeField.articleContent, .bool(true)))
        let (header, data) = try Self.write(changes, writtenAt: -5)
        let reader = try BundleReader(data: data)
        #expect(reader.header == header)
        #expect(reader.totalBytes == data.count)
        #expect(header.formatVersion == 2 && header.schemaVersion == 3 && header.account == "alice")
        #expect(header.writtenAtMillis == -5)
        #expect(header.origins.count == 5 && header.changeCount == UInt64(changes.count))
        Self.expectIdentical(try Self.readAll(reader), changes)
        #expect(try reader.next() == nil)
        #expect(try reader.next() == nil)
        // Every tag was used, and decimals only where they are exact and short.
        let blocks = try Self.walk(try Self.inflated(data))
        #expect(Set(blocks.flatMap(\.tags)) == Set(0...7))
    }

    @Test func nextBlockMatchesNext() throws {
        var rng = SeededRNG(seed: 5)
        let origins = [BundleOriginInfo(id: Self.source, account: "alice"), BundleOriginInfo(id: Self.replica(3), account: "bob")]
        let changes = Self.randomChanges(count: 9_000, origins: origins, rng: &rng)
        let (_, data) = try Self.write(changes)
        let reader = try BundleReader(data: data)
        var fromBlocks: [Change] = []
        var firstNumbers: [UInt64] = []
        while let block = try reader.nextBlock() {
            firstNumbers.append(block.firstNumber)
            for i in 0..<block.count {
                let origin = reader.header.origins[Int(block.origin[i])]
                fromBlocks.append(Change(origin: origin.id, account: origin.account, seq: block.seq[i],
                                         hlc: HLCTimestamp(rawValue: block.hlc[i]), entity: block.entity[i],
                                         key: reader.keys[block.key[i]], field: block.field[i].name, value: block.value[i]))
            }
        }
        #expect(firstNumbers == [1, 4097, 8193])
        Self.expectIdentical(fromBlocks, changes)
        // Keys are shared across blocks: each key's text is in the bundle once, and a key table index names it.
        let distinct = Set(changes.map { Array($0.key.utf8) })
        #expect(reader.keys.count == distinct.count)
        let blocks = try Self.walk(try Self.inflated(data))
        #expect(blocks.flatMap(\.keyTexts).count == distinct.count)
        #expect(blocks[1].keyTexts.count < 5 && blocks[2].keyTexts.count < 5)
    }

    @Test func roundTripLargeStringsManyOriginsAndBlocks() throws {
        var rng = SeededRNG(seed: 99)
        let origins = (0..<300).map { i in
            BundleOriginInfo(id: ReplicaID(bytes: Self.le(UInt64(i) &* 0x9E37_79B9, 8) + Self.le(UInt64(i), 8)) ?? .random(),
                             account: "acct\(i % 7)")
        }
        var changes = Self.randomChanges(count: 9_000, origins: origins, rng: &rng)
        // Strings big enough to close blocks by size: 3 MiB of article content, 200 KB of unicode.
        let big = Self.noise
        let wide = String(repeating: "日本🧑‍🚀é", count: 20_000)
        let extra = BundleOriginInfo(id: Self.replica(0x77), account: "zed")
        changes += [
            Change(origin: extra.id, account: extra.account, seq: 1, hlc: HLCTimestamp(millis: Self.t0, counter: 0),
                   entity: .article, key: "big", field: ChangeField.articleContent, value: .string(big)),
            Change(origin: extra.id, account: extra.account, seq: 2, hlc: HLCTimestamp(millis: Self.t0, counter: 1),
                   entity: .comment, key: "k", field: ChangeField.commentBody, value: .string(wide)),
        ]
        changes += Self.randomChanges(count: 1_000, origins: [extra], rng: &rng).map {
            var c = $0
            c.seq += 10
            return c
        }
        let (header, data) = try Self.write(changes)
        #expect(header.origins.count == 301)

        // The payload holds several blocks, some closed by count and one past 1 MiB.
        let payload = try Self.inflated(data)
        #expect(UInt64(payload.count) == header.uncompressedLength)
        let blocks = try Self.walk(payload)
        #expect(blocks.count >= 4)
        #expect(blocks.contains { $0.count == BundleFormat.maxChangesPerBlock })
        #expect(blocks.contains { $0.columns.reduce(0) { $0 + $1.bytes.count } > 1 << 20 })
        #expect(blocks.reduce(0) { $0 + $1.count } == changes.count)

        // Data path and file path.
        Self.expectIdentical(try Self.readAll(data).1, changes)
        let dir = TempDir()
        let url = dir.url.appendingPathComponent("big.rsb")
        let writer = try BundleWriter(source: Self.source, account: "alice", schemaVersion: 3,
                                      origins: Self.originTable(for: changes), ranges: Self.tightRanges(for: changes),
                                      spoolDirectory: dir.url)
        for change in changes { try writer.append(change) }
        let fileHeader = try writer.finish(to: url)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.url.path) == ["big.rsb"])
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
        #expect(data.count == 84 + Int(header.payloadLength))  // the smallest header
        let (back, changes) = try Self.readAll(data)
        #expect(back == header && changes.isEmpty)

        // No changes but ranges, an empty one among them: the header survives, through the file path too.
        let ranges = [KnowledgeRange(origin: Self.source, account: "alice", scope: .shared, from: 5, to: 9, toIncarnation: 3),
                      KnowledgeRange(origin: Self.replica(3), account: "bob", scope: .private, from: 5, to: 5)]
        let origins = [BundleOriginInfo(id: Self.source, account: "alice"), BundleOriginInfo(id: Self.replica(3), account: "bob")]
        let dir = TempDir()
        let url = dir.url.appendingPathComponent("empty.rsb")
        try Data("old contents that must be replaced".utf8 + [UInt8](repeating: 0, count: 5000)).write(to: url)
        let writer = try BundleWriter(source: Self.source, account: "alice", schemaVersion: 2, origins: origins, ranges: ranges)
        let written = try writer.finish(to: url)
        let reader = try BundleReader(url: url)
        #expect(reader.header == written)
        #expect(reader.header.ranges == ranges && reader.header.origins == origins)
        #expect(try reader.next() == nil)
        #expect(reader.totalBytes == (try Data(contentsOf: url)).count)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.url.path) == ["empty.rsb"])
    }

    @Test func headerFieldsRoundTrip() throws {
        let acks = [BundleAcknowledgement(origin: Self.replica(4), account: "alice", scope: .shared, seq: Self.maxSeq, incarnation: .max),
                    BundleAcknowledgement(origin: Self.replica(4), account: "alice", scope: .private, seq: 0, incarnation: 0)]
        let change = Change(origin: Self.source, account: "alice", seq: Self.maxSeq, hlc: HLCTimestamp(millis: Self.t0, counter: 0),
                            entity: .readState, key: "a", field: ChangeField.read, value: .null)
        let ranges = [KnowledgeRange(origin: Self.source, account: "alice", scope: .private, from: Self.maxSeq - 1,
                                     to: Self.maxSeq, toIncarnation: .max)]
        for writtenAt: Int64? in [nil, 1, Int64(Self.t0), -1, Int64.max, Int64.min] {
            let (header, data) = try Self.write([change], ranges: ranges, acknowledgements: acks, writtenAt: writtenAt)
            let (back, changes) = try Self.readAll(data)
            #expect(back == header)
            #expect(back.writtenAtMillis == writtenAt)
            #expect(back.acknowledgements == acks && back.ranges == ranges)
            Self.expectIdentical(changes, [change])
        }
        // 0 is "unknown".
        #expect(try Self.readAll(try Self.write([change], ranges: ranges, writtenAt: 0).data).0.writtenAtMillis == nil)
    }

    @Test func finishReaderEqualsFinishData() throws {
        var rng = SeededRNG(seed: 31)
        let origins = [BundleOriginInfo(id: Self.source, account: "alice")]
        let small = Self.randomChanges(count: 300, origins: origins, rng: &rng)
        // One payload in the in-memory spool, one spooled to the (unlinked) file.
        var large = small
        large.append(Change(origin: Self.source, account: "alice", seq: (small.last?.seq ?? 0) + 1,
                            hlc: HLCTimestamp(millis: Self.t0, counter: 0), entity: .article, key: "noise",
                            field: ChangeField.articleContent,
                            value: .string(Self.noise)))
        for changes in [small, large] {
            func writer() throws -> BundleWriter {
                let w = try BundleWriter(source: Self.source, account: "alice", schemaVersion: 2, writtenAtMillis: 9,
                                         origins: Self.originTable(for: changes), ranges: Self.tightRanges(for: changes))
                for c in changes { try w.append(c) }
                return w
            }
            let (header, data) = try writer().finishData()
            let reader = try writer().finishReader()
            #expect(reader.header == header)
            #expect(reader.totalBytes == data.count)
            let viaReader = try Self.readAll(reader)
            Self.expectIdentical(viaReader, changes)
            Self.expectIdentical(viaReader, try Self.readAll(data).1)
        }
    }

    @Test func noSpoolFileIsLeftBehind() throws {
        let dir = TempDir()
        let noise = Self.noise
        func change(_ seq: UInt64) -> Change {
            Change(origin: Self.source, account: "alice", seq: seq, hlc: HLCTimestamp(millis: Self.t0, counter: 0),
                   entity: .article, key: "a\(seq)", field: ChangeField.articleContent, value: .string(noise))
        }
        let ranges = [KnowledgeRange(origin: Self.source, account: "alice", scope: .shared, from: 0, to: 10)]
        func writer() throws -> BundleWriter {
            try BundleWriter(source: Self.source, account: "alice", schemaVersion: 2, origins: Self.origin0,
                             ranges: ranges, spoolDirectory: dir.url)
        }
        func listing() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: dir.url.path).sorted() }
        // Dropped mid-way, with megabytes spooled: the spool file was unlinked when it was made.
        do {
            let w = try writer()
            for seq: UInt64 in 1...3 { try w.append(change(seq)) }
            #expect(try listing() == [])
        }
        #expect(try listing() == [])
        // The same with the default spool directory, the system's temporary directory.
        func spools() throws -> [String] {
            try FileManager.default.contentsOfDirectory(atPath: FileManager.default.temporaryDirectory.path)
                .filter { $0.hasPrefix("readersync-bundle-") && $0.hasSuffix(".spool") }
        }
        do {
            let w = try BundleWriter(source: Self.source, account: "alice", schemaVersion: 2, origins: Self.origin0, ranges: ranges)
            for seq: UInt64 in 1...2 { try w.append(change(seq)) }
            #expect(try spools() == [])
        }
        #expect(try spools() == [])
        // Finished each way.
        do {
            let w = try writer()
            try w.append(change(1))
            _ = try w.finishData()
        }
        do {
            let w = try writer()
            try w.append(change(1))
            let reader = try w.finishReader()
            #expect(try listing() == [])
            #expect(try Self.readAll(reader).count == 1)
        }
        do {
            let w = try writer()
            try w.append(change(1))
            _ = try w.finish(to: dir.url.appendingPathComponent("out.rsb"))
        }
        #expect(try listing() == ["out.rsb"])
        // A target in a missing directory: an error, and nothing left anywhere.
        let w = try writer()
        try w.append(change(1))
        do {
            _ = try w.finish(to: dir.url.appendingPathComponent("missing/out.rsb"))
            Issue.record("a bundle was written into a missing directory")
        } catch ReaderSyncError.storage {}
        #expect(try listing() == ["out.rsb"])
    }

    /// The realistic case: one account's read state, synced between devices. Bounds the format's size and prints
    /// each column's share (`Schemas/bundle-format.md` §12).
    @Test func bytesPerChangeForReadState() throws {
        let changes = Self.realisticReadState(count: 10_000, seed: 2025)
        let (header, data) = try Self.write(changes)
        let perChange = Double(data.count) / Double(changes.count)
        let headerLength = data.count - Int(header.payloadLength)
        print(String(format: "bundle bytes per change: %.3f total (%d bytes: header %d, payload %llu), uncompressed %.2f",
                     perChange, data.count, headerLength, header.payloadLength,
                     Double(header.uncompressedLength) / Double(changes.count)))
        // Per column: raw bytes; compressed alone (all blocks' entries of the column in one zlib stream); and the
        // marginal cost (compressed size of every column minus compressed size without this one).
        let blocks = try Self.walk(try Self.inflated(data))
        func joined(_ names: [String]) -> [UInt8] {
            blocks.flatMap { block in names.flatMap { block.column($0) } }
        }
        let n = Double(changes.count)
        let everything = Double(try Deflater.compress(joined(Self.columnNames)).count)
        func padded(_ s: String, _ width: Int) -> String { s + String(repeating: " ", count: max(0, width - s.count)) }
        print("  column       raw    alone  marginal   (bytes per change)")
        for name in Self.columnNames {
            let raw = Double(joined([name]).count)
            let alone = Double(try Deflater.compress(joined([name])).count)
            let without = Double(try Deflater.compress(joined(Self.columnNames.filter { $0 != name })).count)
            print("  " + padded(name, 9) + String(format: " %7.3f %7.3f %8.3f", raw / n, alone / n, (everything - without) / n))
        }
        #expect(perChange <= 7.0, "bytes per change grew to \(perChange)")
        withKnownIssue("format 2 takes about 6.6 bytes per change here; 5 needs a better compressor than deflate for slugs and millisecond deltas (see the spec, §12)") {
            #expect(perChange <= 5.0)
        }
        Self.expectIdentical(try Self.readAll(data).1, changes)
    }

    /// Slugs of 4–7 words as keys, 0–3 progress updates then read and progress 1, sometimes saved or unread, stamped
    /// 0.5–90 s apart, from two devices of one account: the generator of the format-1 size test, unchanged.
    static func realisticReadState(count: Int, seed: UInt64) -> [Change] {
        var rng = SeededRNG(seed: seed)
        let words = ["trump", "putin", "iran", "ukraine", "election", "market", "climate", "court", "budget", "storm",
                     "vote", "talks", "ceasefire", "rates", "fed", "china", "tariffs", "nato", "summit", "strike",
                     "wildfire", "senate", "house", "ruling", "report", "deal", "oil", "prices", "jobs", "ai",
                     "chips", "border", "health", "vaccine", "school", "police", "protest", "trial", "verdict", "gaza"]
        let sources = ["ap", "reuters", "bbc", "nyt", "guardian", "npr"]
        let phone = source
        let laptop = replica(2)
        var seq: [ReplicaID: UInt64] = [phone: 1200, laptop: 800]
        var millis = t0
        var changes: [Change] = []
        while changes.count < count {
            let slug = ([sources.randomElement(using: &rng) ?? "ap"]
                        + (0..<Int.random(in: 3...6, using: &rng)).map { _ in words.randomElement(using: &rng) ?? "x" })
                .joined(separator: "-")
            let device = Int.random(in: 0..<4, using: &rng) == 0 ? laptop : phone
            // Like the store: read and saved times are the wall clock the change is stamped with.
            func add(_ field: String, _ value: (UInt64) -> ChangeValue) {
                millis += UInt64.random(in: 500...90_000, using: &rng)
                let s = (seq[device] ?? 0) + 1
                seq[device] = s
                changes.append(Change(origin: device, account: "alice", seq: s, hlc: HLCTimestamp(millis: millis, counter: 0),
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
        return Array(changes.prefix(count))
    }

    // MARK: - The spec's worked example (format 2)

    static let exampleMe = ReplicaID(string: "00112233-4455-6677-8899-aabbccddeeff") ?? .random()
    static let exampleLaptop = ReplicaID(string: "ffeeddcc-bbaa-9988-7766-554433221100") ?? .random()

    static func exampleChanges() -> [Change] {
        func c(_ seq: UInt64, _ millis: UInt64, _ counter: UInt16, _ entity: EntityKind, _ key: String, _ field: String,
               _ value: ChangeValue) -> Change {
            Change(origin: exampleMe, account: "alice", seq: seq, hlc: HLCTimestamp(millis: millis, counter: counter),
                   entity: entity, key: key, field: field, value: value)
        }
        let t = t0
        return [
            c(1, t, 0, .readState, "a1", ChangeField.read, .int(Int64(t))),
            c(2, t, 1, .readState, "a1", ChangeField.progress, .double(0.5)),
            c(3, t + 60_000, 0, .comment, "alice:c1", ChangeField.commentCreated, .string("{\"article\":\"a1\"}")),
            c(4, t + 60_000, 0, .comment, "alice:c1", ChangeField.commentBody, .string("Nice piece ✓")),
            c(5, t + 90_000, 0, .readState, "a1", ChangeField.saved, .int(Int64(t) + 90_000)),
        ]
    }

    static func exampleBundle() throws -> (header: BundleHeader, data: Data) {
        let me = exampleMe
        let writer = try BundleWriter(
            source: me, account: "alice", schemaVersion: 2, writtenAtMillis: Int64(t0) + 120_000,
            origins: [BundleOriginInfo(id: me, account: "alice")],
            ranges: [KnowledgeRange(origin: me, account: "alice", scope: .shared, from: 0, to: 5, toIncarnation: 0x0123_4567_89AB_CDEF),
                     KnowledgeRange(origin: me, account: "alice", scope: .private, from: 0, to: 5, toIncarnation: 0x0123_4567_89AB_CDEF)],
            acknowledgements: [BundleAcknowledgement(origin: exampleLaptop, account: "alice", scope: .private, seq: 7,
                                                     incarnation: 0xFEDC_BA98_7654_3210)])
        for c in exampleChanges() { try writer.append(c) }
        return try writer.finishData()
    }

    /// `Schemas/bundle-format.md` §13, the inflated payload: normative.
    static let exampleUncompressed = """
        05 65 00 00 00 00 00 02 02 02 02 02 80 dc a1 81 fd 32 03 00 01 80 00 c0 00 00 a9 00 d4 00 00 03 00 01 01 03 03 \
        02 02 03 00 01 00 01 02 02 61 31 08 61 6c 69 63 65 3a 63 31 05 06 02 03 07 06 07 05 05 06 00 0a 01 10 7b 22 61 \
        72 74 69 63 6c 65 22 3a 22 61 31 22 7d 0e 4e 69 63 65 20 70 69 65 63 65 20 e2 9c 93 00 00
        """

    /// `Schemas/bundle-format.md` §13, the whole bundle (compressed by zlib 1.2.13 at level 6).
    static let exampleBundleHex = """
        89 52 53 42 0d 0a 1a 0a 02 00 d0 00 00 00 02 00 00 00 00 11 22 33 44 55 66 77 88 99 aa bb cc dd
        ee ff c0 42 2a d0 97 01 00 00 05 00 00 00 00 00 00 00 67 00 00 00 00 00 00 00 68 00 00 00 00 00
        00 00 10 f3 76 31 01 00 00 00 02 00 00 00 05 61 6c 69 63 65 00 11 22 33 44 55 66 77 88 99 aa bb
        cc dd ee ff 05 61 6c 69 63 65 00 00 00 00 00 00 00 00 00 00 00 00 00 05 00 00 00 00 00 00 00 ef
        cd ab 89 67 45 23 01 00 00 00 00 01 00 00 00 00 00 00 00 00 05 00 00 00 00 00 00 00 ef cd ab 89
        67 45 23 01 01 ff ee dd cc bb aa 99 88 77 66 55 44 33 22 11 00 05 61 6c 69 63 65 01 07 00 00 00
        00 00 00 00 10 32 54 76 98 ba dc fe 75 ae f7 d2 78 9c 63 4d 65 00 01 26 10 68 b8 b3 b0 f1 af 11
        33 03 63 03 c3 01 06 86 95 0c 57 18 18 80 1c 46 66 66 26 26 20 cd c0 c8 c4 94 68 c8 91 98 93 99
        9c 6a 95 6c c8 ca c6 c4 cc ce c6 ce ca ca c6 c0 c5 28 50 ad 94 58 54 92 99 9c 93 aa 64 a5 94 68
        a8 54 cb e7 07 54 a5 50 90 99 0a 24 1f cd 99 cc c0 00 00 d3 ed 15 c4
        """

    @Test func specWorkedExample() throws {
        let (header, data) = try Self.exampleBundle()
        print("worked example bundle (\(data.count) bytes):\n\(Self.hex(data))")
        let payload = try Self.inflated(data)
        #expect(Self.hex(payload) == Self.exampleUncompressed)
        let spec = Self.bytes(hex: Self.exampleBundleHex)
        #expect(spec.count == 311)
        // The header is normative but for the payload's length and CRC (and so the header CRC), which depend on
        // the deflate implementation; with this platform's zlib, the whole bundle is the spec's.
        #expect(data.count - Int(header.payloadLength) == 208)
        if Array(data.dropFirst(208)) != Array(spec.dropFirst(208)) {
            var mine = [UInt8](data.prefix(208))
            var theirs = Array(spec.prefix(208))
            for range in [50..<58, 66..<70, 204..<208] {
                mine.replaceSubrange(range, with: [UInt8](repeating: 0, count: range.count))
                theirs.replaceSubrange(range, with: [UInt8](repeating: 0, count: range.count))
            }
            #expect(mine == theirs)
        } else {
            #expect(Array(data) == spec)
        }
        // The spec's bytes decode to the example with any zlib.
        let (specHeader, specChanges) = try Self.readAll(Data(spec))
        Self.expectIdentical(specChanges, Self.exampleChanges())
        #expect(specHeader.writtenAtMillis == 1_751_544_120_000)
        #expect(specHeader.ranges.map(\.toIncarnation) == [0x0123_4567_89AB_CDEF, 0x0123_4567_89AB_CDEF])
        #expect(specHeader.acknowledgements == [BundleAcknowledgement(origin: Self.exampleLaptop, account: "alice",
                                                                      scope: .private, seq: 7, incarnation: 0xFEDC_BA98_7654_3210)])
        #expect(specHeader.changeCount == 5 && specHeader.payloadLength == 103 && specHeader.uncompressedLength == 104)
        #expect(specHeader.checksum == 0x3176_F310)
    }

    // MARK: - Format 1

    /// The format-1 spec's example (Appendix A.4): 175 bytes.
    static let v1ExampleHex = """
        89 52 53 42 0d 0a 1a 0a 01 00 79 00 00 00 01 00 00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff
        02 00 00 00 00 00 00 00 36 00 00 00 00 00 00 00 32 00 00 00 00 00 00 00 1c e4 3b 9f 01 00 00 00
        01 00 00 00 05 61 6c 69 63 65 00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff 05 61 6c 69 63 65
        00 00 00 00 01 00 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00 75 f8 5f 07 78 9c 63 d2 67 60 60
        62 6a f8 d0 d6 fa e5 34 23 23 23 33 33 03 53 a2 21 03 03 4b 51 6a 62 0a 23 47 41 51 7e 7a 51 6a
        71 31 1b 0b 03 04 3c b0 67 00 00 31 43 0b 54
        """

    @Test func readsFormat1SpecExample() throws {
        let bytes = Self.bytes(hex: Self.v1ExampleHex)
        #expect(bytes.count == 175)
        let (header, changes) = try Self.readAll(Data(bytes))
        #expect(header.formatVersion == 1 && header.schemaVersion == 1 && header.account == "alice")
        #expect(header.writtenAtMillis == nil && header.acknowledgements.isEmpty)
        #expect(header.ranges == [KnowledgeRange(origin: Self.exampleMe, account: "alice", scope: .private, from: 0, to: 2)])
        Self.expectIdentical(changes, [
            Change(origin: Self.exampleMe, account: "alice", seq: 1, hlc: HLCTimestamp(millis: Self.t0, counter: 0),
                   entity: .readState, key: "a1", field: ChangeField.read, value: .int(Int64(Self.t0))),
            Change(origin: Self.exampleMe, account: "alice", seq: 2, hlc: HLCTimestamp(millis: Self.t0, counter: 1),
                   entity: .readState, key: "a1", field: ChangeField.progress, value: .double(0.5)),
        ])
    }

    struct V1Inspection: Decodable {
        struct Range: Decodable {
            var account: String
            var from: UInt64
            var origin: String
            var scope: String
            var to: UInt64
        }
        var account: String
        var changeCount: UInt64
        var checksum: UInt32
        var countsByEntity: [String: Int]
        var formatVersion: UInt16
        var payloadBytes: UInt64
        var ranges: [Range]
        var schemaVersion: UInt16
        var source: String
        var uncompressedBytes: UInt64
    }

    static func fixture(_ name: String, _ ext: String) throws -> URL {
        try #require(Bundle.module.url(forResource: name, withExtension: ext, subdirectory: "Fixtures/v1"))
    }

    @Test func readsCommittedFormat1Bundle() throws {
        let url = try Self.fixture("tobob-v1", "bundle")
        let expected = try JSONDecoder().decode(V1Inspection.self, from: Data(contentsOf: try Self.fixture("tobob-v1.inspect", "json")))
        let reader = try BundleReader(url: url)
        let h = reader.header
        #expect(h.formatVersion == expected.formatVersion && h.schemaVersion == expected.schemaVersion)
        #expect(h.source.description == expected.source && h.account == expected.account)
        #expect(h.changeCount == expected.changeCount && h.payloadLength == expected.payloadBytes)
        #expect(h.uncompressedLength == expected.uncompressedBytes && h.checksum == expected.checksum)
        #expect(h.writtenAtMillis == nil && h.acknowledgements.isEmpty)
        #expect(h.ranges.map { "\($0.origin) \($0.account) \($0.scope) \($0.from) \($0.to) \($0.toIncarnation)" }
                == expected.ranges.map { "\($0.origin) \($0.account) \($0.scope) \($0.from) \($0.to) 0" })
        #expect(Set(h.origins.map { "\($0.id) \($0.account)" }) == Set(expected.ranges.map { "\($0.origin) \($0.account)" }))
        let changes = try Self.readAll(reader)
        #expect(Dictionary(grouping: changes, by: { $0.entity.description }).mapValues(\.count) == expected.countsByEntity)
        for c in changes {
            #expect(h.ranges.contains { $0.origin == c.origin && $0.account == c.account && $0.scope == c.scope
                && $0.from < c.seq && c.seq <= $0.to })
            #expect(ChangeField.allowed(for: c.entity).contains(c.field))
        }
        // Block by block, with the blocks' key tables merged into one (equal keys, one entry).
        let blockReader = try BundleReader(data: Data(contentsOf: url))
        var viaBlocks: [Change] = []
        while let block = try blockReader.nextBlock() {
            for i in 0..<block.count {
                let origin = blockReader.header.origins[Int(block.origin[i])]
                viaBlocks.append(Change(origin: origin.id, account: origin.account, seq: block.seq[i],
                                        hlc: HLCTimestamp(rawValue: block.hlc[i]), entity: block.entity[i],
                                        key: blockReader.keys[block.key[i]], field: block.field[i].name, value: block.value[i]))
            }
        }
        Self.expectIdentical(viaBlocks, changes)
        #expect(blockReader.keys.count == Set(changes.map { Array($0.key.utf8) }).count)
    }

    @Test func format1BlocksShareOneKeyTableAndRefuseTag7() throws {
        // Two format-1 blocks naming the same key: one entry of the merged table.
        func v1Block(seq: Int64, tag: UInt8, value: [UInt8], entity: UInt8 = 3) -> [UInt8] {
            var body = BundleFormat.ByteWriter()
            body.varint(0)
            body.signed(seq)
            body.varint(BundleFormat.zigzag(Int64(Self.t0)) << 1)
            body.u8(entity)
            body.varint(0)
            body.string(Array("a1".utf8))
            body.varint(0)
            body.string(Array("progress".utf8))
            body.u8(tag)
            body.raw(value)
            var w = BundleFormat.ByteWriter()
            w.varint(1)
            w.varint(UInt64(body.bytes.count))
            w.raw(body.bytes)
            return w.bytes
        }
        let half = Self.le(0.5.bitPattern, 8)
        let data = try Self.handMade(payload: v1Block(seq: 1, tag: 4, value: half) + v1Block(seq: 2, tag: 4, value: half) + [0],
                                     changeCount: 2, version: 1)
        let reader = try BundleReader(data: data)
        let first = try #require(try reader.nextBlock())
        let second = try #require(try reader.nextBlock())
        #expect(first.key == [0] && second.key == [0] && reader.keys.count == 1)
        #expect(try reader.nextBlock() == nil)
        // Tag 7 is format 2 only.
        let decimal = try Self.handMade(payload: v1Block(seq: 1, tag: 7, value: [0x0A, 0x01]) + [0], changeCount: 1, version: 1)
        #expect(Self.failure { _ = try Self.readAll(decimal) } == "change 1: unknown value type 7")
        // A format-1 field name of another entity.
        let wrongField = try Self.handMade(payload: v1Block(seq: 1, tag: 0, value: [], entity: 1) + [0], changeCount: 1,
                                           ranges: [KnowledgeRange(origin: Self.source, account: "alice", scope: .shared, from: 0, to: 10)],
                                           version: 1)
        #expect(Self.failure { _ = try Self.readAll(wrongField) } == "change 1: field 'progress' is not allowed for article")
    }

    @Test func committedFormat1BundleApplies() throws {
        let bob = try Replica.inMemory(account: "bob", options: ReplicaOptions(wallClock: ManualWallClock(millis: 1_900_000_000_000)))
        let result = try bob.applyBundle(at: try Self.fixture("tobob-v1", "bundle"))
        #expect(result.received == 10 && result.applied + result.duplicates == 10)
        let knowledge = try bob.knowledge()
        for range in try Self.readAll(Data(contentsOf: try Self.fixture("tobob-v1", "bundle"))).0.ranges {
            #expect(knowledge.seq(origin: range.origin, account: range.account, scope: range.scope) == range.to)
        }
    }

    /// `Schemas/bundle-format.md` §10: a range `(from, to]` requires the receiver to hold `from`, empty ranges too.
    @Test func emptyRangeNeedsKnowledgeOfItsStart() throws {
        let origin = Self.replica(0x42)
        func bundle(from: UInt64, to: UInt64) throws -> Data {
            let writer = try BundleWriter(source: origin, account: "alice", schemaVersion: 2,
                                          origins: [BundleOriginInfo(id: origin, account: "alice")],
                                          ranges: [KnowledgeRange(origin: origin, account: "alice", scope: .shared, from: from, to: to)])
            return try writer.finishData().data
        }
        let bob = try Replica.inMemory(account: "bob")
        do {
            try bob.applyBundle(data: try bundle(from: 5, to: 5))
            Issue.record("(5, 5] was applied by a replica that holds nothing of its origin")
        } catch ReaderSyncError.missingChanges(let message) {
            #expect(message.contains("changes 1...5"), "\(message)")
        }
        try bob.applyBundle(data: try bundle(from: 0, to: 5))  // every change compacted away: nothing but the range
        #expect(try bob.knowledge().seq(origin: origin, account: "alice", scope: .shared) == 5)
        try bob.applyBundle(data: try bundle(from: 5, to: 5))
        try bob.applyBundle(data: try bundle(from: 3, to: 5))  // overlapping: harmless
        #expect(try bob.knowledge().seq(origin: origin, account: "alice", scope: .shared) == 5)
    }

    // MARK: - Refusals: header

    @Test func truncatedAtEveryOffset() throws {
        let (_, data) = try Self.smallBundle()
        let v1 = try Data(contentsOf: try Self.fixture("tobob-v1", "bundle"))
        var problems: [String] = []
        for bundle in [data, v1] {
            for length in 0..<bundle.count {
                let message = Self.failure { _ = try Self.readAll(bundle.prefix(length)) }
                if message == nil || message?.hasPrefix("UNEXPECTED") == true {
                    problems.append("cut to \(length) of \(bundle.count) bytes: \(message ?? "accepted")")
                }
            }
        }
        #expect(problems.isEmpty, "\(problems.prefix(5))")
        #expect(Self.failure { _ = try Self.readAll(data.prefix(13)) } == "bundle is truncated: it is 13 bytes, shorter than the smallest header (73 bytes)")
        // Slices that do not start at index 0 behave the same.
        let shifted = (Data([9, 9, 9]) + data).dropFirst(3)
        #expect(try Self.readAll(shifted).1.count == 25)
        // The file path reports truncation as such.
        let dir = TempDir()
        let url = dir.url.appendingPathComponent("cut.rsb")
        try data.prefix(data.count - 10).write(to: url)
        let message = Self.failure { _ = try BundleReader(url: url) }
        #expect(message?.hasPrefix("bundle is truncated: header says") == true, "\(message ?? "nil")")
        try Data().write(to: url)
        #expect(Self.failure { _ = try BundleReader(url: url) } == "not a ReaderSync bundle (it is empty)")
    }

    @Test func trailingBytesAfterPayload() throws {
        let (_, data) = try Self.smallBundle()
        let length = try Self.readAll(data).0.payloadLength
        #expect(Self.failure { _ = try BundleReader(data: data + [0]) }
                == "bundle has 1 unexpected bytes after its \(length)-byte payload")
    }

    @Test func randomBitFlipsAreAllDetected() throws {
        let (changes, data) = try Self.smallBundle()
        var rng = SeededRNG(seed: 0xF11F)
        var accepted = 0
        for _ in 0..<400 {
            var bytes = [UInt8](data)
            let index = Int(rng.next() % UInt64(bytes.count))
            bytes[index] ^= UInt8(1) << (rng.next() % 8)
            do {
                let (_, back) = try Self.readAll(Data(bytes))
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

    /// Every bit of the header, flipped: with the header CRC left alone it is a checksum mismatch (or, in the
    /// frozen prefix, the magic or length check); with the CRC repaired, the header's own checks decide, and a
    /// bundle they accept must decode to the same changes.
    @Test func headerCorruptionAtEveryByte() throws {
        let (changes, data) = try Self.smallBundle()
        let headerLength = data.count - Int(try Self.readAll(data).0.payloadLength)
        var repairedAccepted = Set<Int>()
        var problems: [String] = []
        for offset in 0..<headerLength {
            for bit in 0..<8 {
                var bytes = [UInt8](data)
                bytes[offset] ^= UInt8(1) << bit
                let plain = Self.failure { _ = try Self.readAll(Data(bytes)) }
                let expected: String
                switch offset {
                case 0..<8: expected = "not a ReaderSync bundle (wrong magic)"
                case 8..<14: expected = "bundle "  // version and length: see newerFormatVersion, headerLengthLimits
                default: expected = "bundle header checksum mismatch (stored 0x"
                }
                if plain?.hasPrefix(expected) != true { problems.append("offset \(offset) bit \(bit): \(plain ?? "accepted")") }
                // Repaired CRC: two bits of every byte after the frozen prefix and before the CRC.
                guard offset >= 14, offset < headerLength - 4, bit == 0 || bit == 1 + offset % 7 else { continue }
                let repaired = try Self.patchHeader(Data(bytes), at: offset, with: [bytes[offset]])
                do {
                    let (_, back) = try Self.readAll(repaired)
                    // The origin table may have changed (an id or account letter): the rest may not.
                    let same = back.count == changes.count && zip(back, changes).allSatisfy { x, y in
                        var z = x
                        z.origin = y.origin
                        z.account = y.account
                        return Self.same(z, y)
                    }
                    if !same { problems.append("offset \(offset) bit \(bit): accepted with other changes") }
                    repairedAccepted.insert(offset)
                } catch let error as ReaderSyncError {
                    if case .invalidBundle = error {} else { problems.append("offset \(offset) bit \(bit): \(error)") }
                }
            }
        }
        #expect(problems.isEmpty, "\(problems.prefix(5))")
        // What the changes do not depend on: schema version, source, writtenAt, the incarnations, the
        // acknowledgement's origin, seq (below 2^63) and incarnation, account letters that stay valid UTF-8.
        let structural = [16, 17] + Array(42..<78)  // kind, flags, counts, lengths, CRC, table sizes
        #expect(repairedAccepted.isDisjoint(with: structural), "\(repairedAccepted.intersection(structural).sorted())")
        #expect(repairedAccepted.contains(14) && repairedAccepted.contains(34) && repairedAccepted.contains(18))
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
        for version: UInt64 in [3, 7, 0xFFFF] {
            let newer = try Self.patchHeader(data, at: 8, with: Self.le(version, 2))
            #expect(Self.failure { _ = try BundleReader(data: newer) }
                    == "bundle format version \(version) is newer than this build supports (2); upgrade ReaderSync")
        }
        // A newer version with a header this build cannot even check is still reported as newer.
        var unreadable = [UInt8](data.prefix(14))
        unreadable.replaceSubrange(8..<10, with: Self.le(3, 2))
        unreadable.replaceSubrange(10..<14, with: Self.le(UInt64(UInt32.max), 4))
        #expect(Self.failure { _ = try BundleReader(data: Data(unreadable)) }?.contains("version 3 is newer") == true)
        // Version 0 is never valid.
        let zero = try Self.patchHeader(data, at: 8, with: Self.le(0, 2))
        #expect(Self.failure { _ = try BundleReader(data: zero) } == "bundle format version 0 is not valid")
        // A corrupted version field with a stale CRC is a checksum error, not a version error.
        var flipped = [UInt8](data)
        flipped[8] = 5
        #expect(Self.failure { _ = try BundleReader(data: Data(flipped)) }?.hasPrefix("bundle header checksum mismatch") == true)
        // A format-2 header relabelled as format 1 (CRC fixed) does not parse as format 1.
        let relabelled = try Self.patchHeader(data, at: 8, with: Self.le(1, 2))
        let relabelledMessage = Self.failure { _ = try Self.readAll(relabelled) }
        #expect(relabelledMessage != nil && relabelledMessage?.hasPrefix("UNEXPECTED") == false)
    }

    @Test func kindAndFlags() throws {
        let (_, data) = try Self.smallBundle()
        for kind: UInt8 in [1, 2, 0xFF] {
            #expect(Self.failure { _ = try BundleReader(data: try Self.patchHeader(data, at: 16, with: [kind])) }
                    == "bundle kind \(kind) is not known to this build (0, a delta); upgrade ReaderSync")
        }
        for (flags, text) in [(UInt8(1), "1"), (0x80, "80"), (0xFF, "ff")] {
            #expect(Self.failure { _ = try BundleReader(data: try Self.patchHeader(data, at: 17, with: [flags])) }
                    == "bundle header is invalid: unknown flags 0x\(text)")
        }
    }

    @Test func payloadChecksumMismatch() throws {
        let (_, data) = try Self.smallBundle()
        var bytes = [UInt8](data)
        bytes[bytes.count - 7] ^= 0x10
        let message = Self.failure { _ = try BundleReader(data: Data(bytes)) }
        #expect(message?.hasPrefix("bundle checksum mismatch (header 0x") == true, "\(message ?? "nil")")
        // The file path checks it too, before returning.
        let dir = TempDir()
        let url = dir.url.appendingPathComponent("bad.rsb")
        try Data(bytes).write(to: url)
        #expect(Self.failure { _ = try BundleReader(url: url) }?.hasPrefix("bundle checksum mismatch") == true)
    }

    @Test func absurdHeaderFields() throws {
        let (_, data) = try Self.smallBundle()
        let cases: [(offset: Int, bytes: [UInt8], expected: String)] = [
            (42, Self.le(1 << 40, 8), "bundle header claims 1099511627776 changes (limit 4294967296)"),
            (50, Self.le(1 << 50, 8), "bundle header claims a payload of 1125899906842624 bytes (limit 1099511627776)"),
            (58, Self.le(1 << 60, 8), "bundle header claims the payload inflates to 1152921504606846976 bytes (limit 17592186044416)"),
            (70, Self.le(4_000_000, 4), "bundle header claims 4000000 origins (limit 1000000)"),
            (70, Self.le(900_000, 4), "bundle header is corrupt: 900000 origins and"),
            (74, Self.le(3_000_000, 4), "bundle header claims 3000000 ranges (limit 2000000)"),
            (74, Self.le(1_000, 4), "ranges need at least"),
            (42, Self.le(1_000_000, 8), "bundle header claims 1000000 changes, but its ranges cover only"),
            (50, Self.le(1 << 30, 8), "bundle is truncated: header says 1073741824 payload bytes, file has"),
            (58, Self.le(1 << 30, 8), "more than deflate's 1032:1)"),
            (58, Self.le(5, 8), "uncompressed bytes (at least 176 needed)"),
            (78, [0xFF, 0xFF, 0xFF, 0xFF, 0x0F], "bundle header is corrupt: the source account is 4294967295 bytes long (limit 1024)"),
            (78, [0x06], "bundle header is"),
            (78, [0x80, 0x00], "the length of the source account is a varint with redundant trailing zero groups"),
        ]
        for c in cases {
            let patched = try Self.patchHeader(data, at: c.offset, with: c.bytes)
            let message = Self.failure { _ = try Self.readAll(patched) }
            #expect(message?.contains(c.expected) == true, "offset \(c.offset): \(message ?? "accepted")")
        }
    }

    @Test func headerLengthLimits() throws {
        let (_, data) = try Self.smallBundle()
        for length: UInt64 in [UInt64(UInt32.max), 83, 20] {
            var bytes = [UInt8](data)
            bytes.replaceSubrange(10..<14, with: Self.le(length, 4))
            #expect(Self.failure { _ = try BundleReader(data: Data(bytes)) }
                    == "bundle header length \(length) is invalid (minimum 84, limit 134217728)")
        }
        var bytes = [UInt8](data.prefix(300))
        bytes.replaceSubrange(10..<14, with: Self.le(1_000, 4))
        #expect(Self.failure { _ = try BundleReader(data: Data(bytes)) } == "bundle is truncated: the header is 1000 bytes, the bundle has 300")
        // Format 1's minimum is 73.
        let v1 = try Data(contentsOf: try Self.fixture("tobob-v1", "bundle"))
        var short = [UInt8](v1)
        short.replaceSubrange(10..<14, with: Self.le(72, 4))
        #expect(Self.failure { _ = try BundleReader(data: Data(short)) } == "bundle header length 72 is invalid (minimum 73, limit 134217728)")
        // Bytes between the last table and the CRC.
        let header = try Self.readAll(data).0
        var padded = [UInt8](data)
        let headerLength = data.count - Int(header.payloadLength)
        padded.insert(0, at: headerLength - 4)
        padded.replaceSubrange(10..<14, with: Self.le(UInt64(headerLength + 1), 4))
        let fixed = try Self.patchHeader(Data(padded), at: 10, with: Self.le(UInt64(headerLength + 1), 4))
        #expect(Self.failure { _ = try BundleReader(data: fixed) } == "bundle header is corrupt: 1 unexpected bytes before its checksum")
    }

    @Test func invalidHeaderTables() throws {
        let a = BundleOriginInfo(id: Self.source, account: "alice")
        let aWork = BundleOriginInfo(id: Self.source, account: "alice-work")
        let b = BundleOriginInfo(id: Self.replica(5), account: "bob")
        let good = KnowledgeRange(origin: a.id, account: a.account, scope: .shared, from: 0, to: 3)
        let cases: [([BundleOriginInfo], [KnowledgeRange], String)] = [
            ([a, a], [], "origin \(a.id) (alice) is listed twice"),
            ([a], [KnowledgeRange(origin: b.id, account: "bob", scope: .shared, from: 0, to: 3)], "not in the origin table"),
            ([a], [KnowledgeRange(origin: a.id, account: "alice-work", scope: .shared, from: 0, to: 3)], "not in the origin table"),
            ([a], [KnowledgeRange(origin: a.id, account: "alice", scope: .shared, from: 4, to: 3)],
             "the range of origin \(a.id) (alice, shared) runs backwards: (4, 3]"),
            ([a], [KnowledgeRange(origin: a.id, account: "alice", scope: .private, from: 0, to: Self.maxSeq + 1)],
             "the range of origin \(a.id) (alice, private) ends at 9223372036854775808, past the largest sequence number 9223372036854775807"),
            ([a, b], [good, good], "origin \(a.id) (alice, shared) has two ranges"),
            ([BundleOriginInfo(id: a.id, account: String(repeating: "x", count: 1025))], [], "bytes long (limit 1024)"),
        ]
        for (origins, ranges, expected) in cases {
            // The writer refuses to write such a header…
            let message = Self.failure {
                _ = try BundleWriter(source: Self.source, account: "alice", schemaVersion: 1, origins: origins, ranges: ranges)
            }
            #expect(message?.hasPrefix("cannot write bundle: ") == true && message?.contains(expected) == true, "\(message ?? "accepted")")
            // …and the reader refuses to read one.
            if !expected.contains("not in the origin table") {
                let forged = try Self.handMade(payload: [0], changeCount: 0, origins: origins, ranges: ranges)
                let readMessage = Self.failure { _ = try BundleReader(data: forged) }
                #expect(readMessage?.contains(expected) == true, "\(readMessage ?? "accepted")")
            }
        }
        // One replica id under two accounts is two origins; 2^63 − 1 is a valid range end.
        let ok = try BundleWriter(source: Self.source, account: "alice", schemaVersion: 1, origins: [a, aWork],
                                  ranges: [KnowledgeRange(origin: a.id, account: "alice", scope: .shared, from: 0, to: Self.maxSeq),
                                           KnowledgeRange(origin: a.id, account: "alice-work", scope: .shared, from: 0, to: 1)])
        #expect(try Self.readAll(try ok.finishData().data).0.origins == [a, aWork])
        // A range naming an origin index past the table, and an unknown scope (hand-patched).
        let forged = try Self.handMade(payload: [0], changeCount: 0, origins: [a], ranges: [good])
        let rangeAt = 78 + 6 + 16 + 6
        #expect(Self.failure { _ = try BundleReader(data: try Self.patchHeader(forged, at: rangeAt, with: Self.le(1, 4))) }
                == "bundle header is corrupt: range 0 names origin index 1, but the table has 1 origins")
        #expect(Self.failure { _ = try BundleReader(data: try Self.patchHeader(forged, at: rangeAt + 4, with: [2])) }
                == "bundle header is corrupt: range 0 has unknown scope 2")
    }

    @Test func acknowledgementLimits() throws {
        let ack = BundleAcknowledgement(origin: Self.replica(4), account: "alice", scope: .private, seq: 3, incarnation: 1)
        // The writer refuses more than two, a seq past 2^63 − 1 and a long account.
        var tooLate = ack
        tooLate.seq = Self.maxSeq + 1
        var longAccount = ack
        longAccount.account = String(repeating: "a", count: 1025)
        let writerCases: [([BundleAcknowledgement], String)] = [
            ([ack, ack, ack], "cannot write bundle: 3 acknowledgements (limit 2)"),
            ([tooLate], "cannot write bundle: acknowledgement 0 claims seq 9223372036854775808, past 9223372036854775807"),
            ([longAccount], "cannot write bundle: the account of acknowledgement 0 is 1025 bytes long (limit 1024)"),
        ]
        for (acks, expected) in writerCases {
            #expect(Self.failure {
                _ = try BundleWriter(source: Self.source, account: "alice", schemaVersion: 1, origins: [], ranges: [],
                                     acknowledgements: acks)
            } == expected)
        }
        // The reader refuses them too (headers encoded without the writer's checks, or patched).
        func bundle(_ acks: [BundleAcknowledgement]) throws -> Data {
            let compressed = try Deflater.compress([0])
            return Data(try BundleFormat.encodeHeader(BundleHeader(
                schemaVersion: 1, source: Self.source, account: "alice", origins: [], ranges: [], acknowledgements: acks,
                changeCount: 0, payloadLength: UInt64(compressed.count), uncompressedLength: 1, checksum: crc32(compressed))) + compressed)
        }
        #expect(Self.failure { _ = try BundleReader(data: try bundle([tooLate])) }
                == "bundle header is invalid: acknowledgement 0 claims seq 9223372036854775808, past 9223372036854775807")
        #expect(Self.failure { _ = try BundleReader(data: try bundle([longAccount])) }
                == "bundle header is corrupt: the account of acknowledgement 0 is 1025 bytes long (limit 1024)")
        let two = try bundle([ack, ack])
        #expect(try Self.readAll(two).0.acknowledgements == [ack, ack])
        let countAt = 78 + 6
        #expect(Self.failure { _ = try BundleReader(data: try Self.patchHeader(two, at: countAt, with: [3])) }
                == "bundle header is invalid: 3 acknowledgements (limit 2)")
        #expect(Self.failure { _ = try BundleReader(data: try Self.patchHeader(two, at: countAt, with: [1])) }
                == "bundle header is corrupt: 39 unexpected bytes before its checksum")
        let scopeAt = countAt + 1 + 16 + 6
        #expect(Self.failure { _ = try BundleReader(data: try Self.patchHeader(two, at: scopeAt, with: [7])) }
                == "bundle header is corrupt: acknowledgement 0 has unknown scope 7")
    }

    // MARK: - Refusals: payload (hand-made, with valid checksums)

    @Test func handMadePayloadDecodes() throws {
        // The spec's column layout, written by hand, decodes: the builder is the spec.
        let data = try Self.handMade(payload: SpecBlock.payload([SpecBlock()]), changeCount: 1)
        Self.expectIdentical(try Self.readAll(data).1, [
            Change(origin: Self.source, account: "alice", seq: 1, hlc: HLCTimestamp(millis: Self.t0, counter: 0),
                   entity: .readState, key: "a1", field: ChangeField.read, value: .int(1))])
        // Three changes: a counter, a recency reference, a key of the previous block, tags 6 and 7, a wide hlc.
        var first = SpecBlock()
        first.origins = [0, 0]
        first.seqDeltas = [1, 1]
        first.hlcEntries = [0, BundleFormat.zigzag(-3) << 1 | 1]
        first.counters = [65_535]
        first.entities = [3, 3]
        first.keyRefs = [0, 0]
        first.keyTexts = [Array("a1".utf8), Array("é".utf8)]
        first.fields = [6, 7]
        first.tags = [7, 6]
        first.values = [0x0A, 0x01, 0x03]
        var second = SpecBlock()
        second.seqDeltas = [5]
        second.hlcBase = 0
        second.hlcWidth = 8
        second.keyRefs = [2]
        second.keyTexts = []
        second.fields = [6]
        second.tags = [0]
        second.values = []
        let (_, changes) = try Self.readAll(try Self.handMade(payload: SpecBlock.payload([first, second]), changeCount: 3))
        Self.expectIdentical(changes, [
            Change(origin: Self.source, account: "alice", seq: 1, hlc: HLCTimestamp(millis: Self.t0, counter: 0),
                   entity: .readState, key: "a1", field: ChangeField.progress, value: .double(0.5)),
            Change(origin: Self.source, account: "alice", seq: 2, hlc: HLCTimestamp(millis: Self.t0 - 3, counter: 65_535),
                   entity: .readState, key: "é", field: ChangeField.saved, value: .int(Int64(Self.t0) - 3 - 2)),
            Change(origin: Self.source, account: "alice", seq: 5, hlc: HLCTimestamp(millis: 0, counter: 0),
                   entity: .readState, key: "a1", field: ChangeField.progress, value: .null),
        ])
    }

    @Test func invalidPayloadContents() throws {
        func block(_ edit: (inout SpecBlock) -> Void) -> SpecBlock {
            var b = SpecBlock()
            edit(&b)
            return b
        }
        let me = Self.source
        let cases: [(payload: [UInt8], expected: String)] = [
            (SpecBlock.payload([block { $0.origins = [1] }]), "change 1: origin index 1 is not in the origin table (1 origins)"),
            (SpecBlock.payload([block { $0.entities = [9] }]), "change 1: unknown entity kind 9"),
            (SpecBlock.payload([block { $0.entities = [0] }]), "change 1: unknown entity kind 0"),
            (SpecBlock.payload([block { $0.tags = [8]; $0.values = [] }]), "change 1: unknown value type 8"),
            (SpecBlock.payload([block { $0.fields = [0] }]), "change 1: unknown field code 0"),
            (SpecBlock.payload([block { $0.fields = [8] }]), "change 1: unknown field code 8"),
            (SpecBlock.payload([block { $0.fields = [1] }]), "change 1: field 'content' is not allowed for readState"),
            (SpecBlock.payload([block { $0.entities = [1] }]), "change 1: field 'read' is not allowed for article"),
            (SpecBlock.payload([block { $0.entities = [2]; $0.fields = [3] }]), "change 1: the bundle has no range for origin \(me) (shared)"),
            (SpecBlock.payload([block { $0.seqDeltas = [11] }]), "change 1: seq 11 of origin \(me) (private) is outside the bundle's range (0, 10]"),
            (SpecBlock.payload([block { $0.seqDeltas = [0] }]), "change 1: seq 0 of origin \(me) (private) is outside the bundle's range (0, 10]"),
            (SpecBlock.payload([block { $0.seqDeltas = [-1] }]), "change 1: seq 18446744073709551615 of origin \(me) (private) is outside"),
            (SpecBlock.payload([block { $0.keyRefs = [1]; $0.keyTexts = [] }]), "change 1: key reference 1 is past the bundle's key table (0 entries)"),
            (SpecBlock.payload([block { $0.keyTexts = [[0xC3, 0x28]] }]), "bundle payload is corrupt: block 1: the key of change 1 is not valid UTF-8"),
            (SpecBlock.payload([block { $0.keyTexts = [[0xED, 0xA0, 0x80]] }]), "the key of change 1 is not valid UTF-8"),  // a surrogate
            (SpecBlock.payload([block { $0.keyTexts = [[UInt8](repeating: 0x6B, count: 65_537)] }]),
             "bundle payload is corrupt: block 1: the key of change 1 is 65537 bytes long (limit 65536)"),
            (SpecBlock.payload([block { $0.keyLengths = [1 << 40] }]), "the key of change 1 is 1099511627776 bytes long (limit 65536)"),
            (SpecBlock.payload([block { $0.hlcWidth = 0 }]), "bundle payload is corrupt: block 1: hlc width 0 is not 1…8"),
            (SpecBlock.payload([block { $0.hlcWidth = 9 }]), "bundle payload is corrupt: block 1: hlc width 9 is not 1…8"),
            (SpecBlock.payload([block { $0.hlcBase = 1 << 48 }]), "bundle payload is corrupt: block 1: hlc base 281474976710656 is out of range"),
            (SpecBlock.payload([block { $0.hlcBase = 0; $0.hlcEntries = [BundleFormat.zigzag(-1) << 1] }]), "change 1: hlc milliseconds out of range"),
            (SpecBlock.payload([block { $0.hlcBase = (1 << 48) - 1; $0.hlcEntries = [BundleFormat.zigzag(1) << 1] }]), "change 1: hlc milliseconds out of range"),
            (SpecBlock.payload([block { $0.hlcEntries = [1]; $0.counters = [0] }]), "change 1: hlc counter 0 out of range (1…65535)"),
            (SpecBlock.payload([block { $0.hlcEntries = [1]; $0.counters = [65_536] }]), "change 1: hlc counter 65536 out of range (1…65535)"),
            (SpecBlock.payload([block { $0.tags = [7]; $0.values = [0x0A, 16] }]), "change 1: decimal 5e-16 is out of range"),
            (SpecBlock.payload([block { $0.tags = [7]; $0.values = Self.varint(BundleFormat.zigzag((1 << 53) + 1)) + [0] }]),
             "change 1: decimal 9007199254740993e-0 is out of range"),
            (SpecBlock.payload([block { $0.tags = [7]; $0.values = [0x0A] }]), "bundle payload is corrupt: block 1: the exponent of change 1 runs past the end (1 bytes needed, 0 left)"),
            (SpecBlock.payload([block { $0.tags = [4]; $0.values = [1, 2, 3] }]), "the value of change 1 runs past the end (8 bytes needed, 3 left)"),
            (SpecBlock.payload([block { $0.tags = [5]; $0.values = [2, 0xC3, 0x28] }]), "the value of change 1 is not valid UTF-8"),
            (SpecBlock.payload([block { $0.values = [0x02, 0x00] }]), "bundle payload is corrupt: block 1: 1 unexpected bytes after the last column"),
            (SpecBlock.payload([block { $0.values = [0x80, 0x00] }]), "the value of change 1 is a varint with redundant trailing zero groups"),
            (SpecBlock.payload([SpecBlock()], after: [0]), "bundle payload is corrupt: 1 bytes follow the end marker"),
            ([0], "bundle payload is corrupt: it holds 0 changes, but the header says 1"),
            ([1, 1, 0, 0], "bundle payload is corrupt: block 1 is 1 bytes long (7 to 67108864 allowed for 1 changes)"),
            ([1, 0x80, 0x80, 0x80, 0x40, 0], "block 1 is 134217728 bytes long (7 to 67108864 allowed for 1 changes)"),
            ([0x80, 0x40, 7, 0, 0, 0, 0, 0, 0, 0, 0], "bundle payload is corrupt: block 1 claims 8192 changes (limit 4096)"),
            ([2, 20] + [UInt8](repeating: 0, count: 20) + [0], "bundle payload is corrupt: block 1 brings the change count past the 1 the header declares"),
            ([0x80, 0x00], "bundle payload is corrupt: the change count of block 1 is a varint with redundant trailing zero groups"),
        ]
        for c in cases {
            let data = try Self.handMade(payload: c.payload, changeCount: 1)
            let message = Self.failure { _ = try Self.readAll(data) }
            #expect(message?.contains(c.expected) == true, "expected '\(c.expected)', got \(message ?? "acceptance")")
        }
    }

    static func varint(_ value: UInt64) -> [UInt8] {
        var w = BundleFormat.ByteWriter()
        w.varint(value)
        return w.bytes
    }

    /// A key text repeated under a second table entry would split one target in two in the batched merge: the
    /// reader refuses it, and a replica offered such a bundle is left unchanged.
    @Test func aKeyIsIntroducedOncePerBundle() throws {
        var b = SpecBlock()
        b.origins = [0, 0]
        b.seqDeltas = [1, 1]
        b.hlcEntries = [0, 2]
        b.entities = [3, 3]
        b.keyRefs = [0, 0]
        b.keyTexts = [Array("a1".utf8), Array("a1".utf8)]
        b.fields = [5, 5]
        b.tags = [6, 6]
        b.values = [0, 0]
        let duplicate = try Self.handMade(payload: SpecBlock.payload([b]), changeCount: 2)
        #expect(Self.failure { _ = try Self.readAll(duplicate) } == "change 2: key 'a1' is already in the bundle's key table (entry 0)")
        // Across blocks too.
        var second = SpecBlock()
        second.seqDeltas = [3]
        let again = try Self.handMade(payload: SpecBlock.payload([SpecBlock(), second]), changeCount: 2)
        #expect(Self.failure { _ = try Self.readAll(again) } == "change 2: key 'a1' is already in the bundle's key table (entry 0)")
        // Applied to a replica: refused whole, nothing changes.
        let alice = try Replica.inMemory(account: "alice", options: ReplicaOptions(wallClock: ManualWallClock(millis: Int64(Self.t0))))
        let before = try alice.canonicalDump()
        #expect(throws: ReaderSyncError.self) { try alice.applyBundle(data: duplicate) }
        #expect(try alice.canonicalDump() == before)
    }

    @Test func seqAndRangesPast2to63() throws {
        // A range may end at 2^63 − 1, not after; so no change's seq can pass it.
        let atLimit = [KnowledgeRange(origin: Self.source, account: "alice", scope: .private, from: Self.maxSeq - 1, to: Self.maxSeq)]
        var b = SpecBlock()
        b.seqDeltas = [Int64.max]
        let ok = try Self.handMade(payload: SpecBlock.payload([b]), changeCount: 1, ranges: atLimit)
        #expect(try Self.readAll(ok).1.first?.seq == Self.maxSeq)
        b.seqDeltas = [Int64.min]  // 2^63
        let past = try Self.handMade(payload: SpecBlock.payload([b]), changeCount: 1, ranges: atLimit)
        #expect(Self.failure { _ = try Self.readAll(past) }
                == "change 1: seq 9223372036854775808 of origin \(Self.source) (private) is outside the bundle's range (9223372036854775806, 9223372036854775807]")
        let beyond = [KnowledgeRange(origin: Self.source, account: "alice", scope: .private, from: 0, to: Self.maxSeq + 1)]
        let forged = try Self.handMade(payload: [0], changeCount: 0, ranges: beyond)
        #expect(Self.failure { _ = try BundleReader(data: forged) }?.hasSuffix("ends at 9223372036854775808, past the largest sequence number 9223372036854775807") == true)
        let writer = try BundleWriter(source: Self.source, account: "alice", schemaVersion: 1, origins: Self.origin0, ranges: atLimit)
        #expect(Self.failure {
            try writer.append(Change(origin: Self.source, account: "alice", seq: Self.maxSeq + 1, hlc: .zero, entity: .readState,
                                     key: "a", field: ChangeField.read, value: .null))
        }?.hasPrefix("cannot write bundle: change 1: seq 9223372036854775808") == true)
    }

    @Test func streamEndingEarlyOrLateAndLengthMismatch() throws {
        let payload = SpecBlock.payload([SpecBlock()])
        // Header understates the uncompressed length: the inflater's cap fires (zip-bomb protection).
        let capped = try Self.handMade(payload: payload, changeCount: 1, uncompressedLength: UInt64(payload.count) - 1)
        #expect(Self.failure { _ = try Self.readAll(capped) }
                == "bundle payload is corrupt: it inflates to more than the \(payload.count - 1) bytes its header declares")
        // Header overstates it.
        let over = try Self.handMade(payload: payload, changeCount: 1, uncompressedLength: UInt64(payload.count) + 5)
        #expect(Self.failure { _ = try Self.readAll(over) }
                == "bundle payload is corrupt: it inflates to \(payload.count) bytes, but the header says \(payload.count + 5)")
        // No end marker: the zlib stream ends first.
        let noEnd = try Self.handMade(payload: Array(payload.dropLast()), changeCount: 1)
        #expect(Self.failure { _ = try Self.readAll(noEnd) } == "bundle payload is corrupt: the compressed stream ends before the end marker")
        // Garbage after the zlib stream but inside the payload (CRC fixed up).
        let trailing = try Self.handMade(payload: payload, changeCount: 1, trailingCompressed: [0xAB])
        #expect(Self.failure { _ = try Self.readAll(trailing) } == "bundle payload is corrupt: 1 bytes follow the end of the zlib stream")
        // A truncated zlib stream (CRC fixed up).
        let truncated = try Self.handMade(payload: payload, changeCount: 1, cut: 3)
        #expect(Self.failure { _ = try Self.readAll(truncated) } == "bundle payload is corrupt: compressed data ends before the zlib stream does")
        // Not zlib at all, and a preset dictionary.
        let compressed: [UInt8] = [0x78, 0x9C, 0xFF, 0xFF, 0xFF]
        let header = BundleHeader(schemaVersion: 1, source: Self.source, account: "alice", origins: Self.origin0,
                                  ranges: Self.range0, changeCount: 1, payloadLength: 5, uncompressedLength: 8,
                                  checksum: crc32(compressed))
        let garbage = Data(try BundleFormat.encodeHeader(header) + compressed)
        #expect(Self.failure { _ = try Self.readAll(garbage) }?.hasPrefix("bundle payload is corrupt: compressed data is corrupt (") == true)
        let dictionary: [UInt8] = [0x78, 0xBB, 0, 0, 0, 1, 0x03, 0x00]
        var dictHeader = header
        dictHeader.payloadLength = UInt64(dictionary.count)
        dictHeader.checksum = crc32(dictionary)
        let withDictionary = Data(try BundleFormat.encodeHeader(dictHeader) + dictionary)
        #expect(Self.failure { _ = try Self.readAll(withDictionary) }
                == "bundle payload is corrupt: compressed data is corrupt (the stream asks for a preset dictionary)")
    }

    @Test func zipBomb() throws {
        // 8 MiB of zeros in about 8 KB: the header's plausibility check and then the inflater's cap refuse it
        // without inflating past what the header declares.
        let zeros = [UInt8](repeating: 0, count: 8 << 20)
        let bomb = try Deflater.compress(zeros)
        #expect(bomb.count < 10_000)
        func bundle(claiming uncompressed: UInt64) throws -> Data {
            let header = BundleHeader(schemaVersion: 1, source: Self.source, account: "alice", origins: Self.origin0,
                                      ranges: Self.range0, changeCount: 1, payloadLength: UInt64(bomb.count),
                                      uncompressedLength: uncompressed, checksum: crc32(bomb))
            return Data(try BundleFormat.encodeHeader(header) + bomb)
        }
        #expect(Self.failure { _ = try Self.readAll(try bundle(claiming: 1 << 40)) }?.hasSuffix("(more than deflate's 1032:1)") == true)
        // Plausible as declared: the inflater stops one byte past the declared length, whatever the stream holds.
        #expect(Self.failure { _ = try Self.readAll(try bundle(claiming: 100)) }
                == "bundle payload is corrupt: it inflates to more than the 100 bytes its header declares")
    }

    @Test func seqsMustIncreasePerOriginAndScope() throws {
        // Two changes of one origin and scope with the same seq, written by hand (seq delta 0).
        var b = SpecBlock()
        b.origins = [0, 0]
        b.seqDeltas = [5, 0]
        b.hlcEntries = [0, 0]
        b.entities = [3, 3]
        b.keyRefs = [0, 1]
        b.fields = [5, 5]
        b.tags = [0, 0]
        b.values = []
        let data = try Self.handMade(payload: SpecBlock.payload([b]), changeCount: 2)
        let reader = try BundleReader(data: data)
        let message = Self.failure { _ = try Self.readAll(reader) }
        #expect(message == "change 2: seq 5 of origin \(Self.source) (private) does not follow the previous one (5)")
        // The reader stays failed, through both interfaces.
        #expect(Self.failure { _ = try reader.next() } == message)
        #expect(Self.failure { _ = try reader.nextBlock() } == message)
    }

    @Test func writerRefusesInvalidChanges() throws {
        let other = Self.replica(0x33)
        let ranges = [KnowledgeRange(origin: Self.source, account: "alice", scope: .private, from: 10, to: 20),
                      KnowledgeRange(origin: Self.source, account: "alice", scope: .shared, from: 0, to: 20)]
        func change(_ seq: UInt64, origin: ReplicaID = Self.source, account: String = "alice", entity: EntityKind = .readState,
                    field: String = ChangeField.read, key: String = "k", value: ChangeValue = .null) -> Change {
            Change(origin: origin, account: account, seq: seq, hlc: HLCTimestamp(millis: Self.t0, counter: 0), entity: entity,
                   key: key, field: field, value: value)
        }
        let cases: [([Change], String)] = [
            ([change(12, origin: other)], "cannot write bundle: change 1: origin \(other) is not in the bundle's origin table"),
            ([change(12, account: "mallory")], "cannot write bundle: change 1: origin \(Self.source) is not in the bundle's origin table"),
            ([change(10)], "cannot write bundle: change 1: seq 10 of origin \(Self.source) (private) is outside the bundle's range (10, 20]"),
            ([change(21)], "is outside the bundle's range (10, 20]"),
            ([change(12), change(12)], "change 2: seq 12 of origin \(Self.source) (private) does not follow the previous one (12)"),
            ([change(12), change(15), change(11)], "change 3: seq 11"),
            ([change(12, field: "foo")], "cannot write bundle: change 1: field 'foo' is not allowed for readState"),
            ([change(12, entity: .article)], "field 'read' is not allowed for article"),
            ([change(12, key: String(repeating: "k", count: BundleFormat.maxKeyBytes + 1))],
             "cannot write bundle: change 1: the key is 65537 bytes (limit 65536)"),
            ([change(3, entity: .comment, field: ChangeField.commentBody,
                     value: .string(String(decoding: [UInt8](repeating: 0x78, count: BundleFormat.maxStringBytes + 1), as: UTF8.self)))],
             "cannot write bundle: change 1: the value is 16777217 bytes (limit 16777216)"),
        ]
        for (changes, expected) in cases {
            let writer = try BundleWriter(source: Self.source, account: "alice", schemaVersion: 1, origins: Self.origin0, ranges: ranges)
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
        #expect(Self.failure { try writer.append(change(17)) } == "cannot append to a finished bundle")
        #expect(Self.failure { _ = try writer.finishData() } == "the bundle is already finished")
    }

    // MARK: - Robustness with valid checksums

    /// Bit flips inside the *uncompressed* payload, recompressed with correct checksums: the decoder's own
    /// validation is all that stands between them and the store. Must throw or decode, never crash.
    @Test func payloadFlipsBehindValidChecksums() throws {
        let (_, data) = try Self.smallBundle()
        let header = try Self.readAll(data).0
        let payload = try Self.inflated(data)
        var rng = SeededRNG(seed: 0xBEEF)
        var refused = 0
        for round in 0..<600 {
            var bytes = payload
            for _ in 0..<(1 + Int(rng.next() % 3)) {
                bytes[Int(rng.next() % UInt64(bytes.count))] ^= UInt8(1) << (rng.next() % 8)
            }
            if round % 10 == 0 { bytes = Array(bytes.prefix(Int(rng.next() % UInt64(bytes.count)))) }
            let forged = try Self.handMade(payload: bytes, changeCount: header.changeCount, origins: header.origins,
                                           ranges: header.ranges)
            if let message = Self.failure({ _ = try Self.readAll(forged) }) {
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
}
