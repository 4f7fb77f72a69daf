import Foundation

// The delta-bundle binary format: constants, limits, the header, the block columns and the checks
// that both ``BundleWriter`` and ``BundleReader`` apply. The byte-by-byte specification is
// `Schemas/bundle-format.md`; keep the two in step.

/// A replica as a bundle's origin table names it: its id and its account.
public struct BundleOriginInfo: Sendable, Hashable {
    /// The replica.
    public var id: ReplicaID
    /// The account the replica belongs to.
    public var account: String

    /// Creates an origin table entry.
    public init(id: ReplicaID, account: String) {
        self.id = id
        self.account = account
    }
}

/// The internal name some code uses for an origin table entry; the same type as ``BundleOriginInfo``.
typealias BundleOrigin = BundleOriginInfo

/// What a bundle's header says: who wrote it, which changes it covers, and how to check its payload.
///
/// ``BundleReader`` only hands out a header after checking the header's own CRC-32, its limits and
/// its tables, that the file holds exactly `payloadLength` payload bytes, and that their CRC-32 is
/// `checksum`. The changes themselves are validated as they are read.
public struct BundleHeader: Sendable, Equatable {
    /// The version of the bundle format (``currentFormatVersion`` for bundles this build writes).
    /// A reader refuses a bundle whose format version is newer than its own.
    public var formatVersion: UInt16
    /// The store schema version of the replica that wrote the bundle. Informational for the bundle
    /// layer: the store decides whether it can apply changes written under that schema.
    public var schemaVersion: UInt16
    /// The replica that wrote the bundle.
    public var source: ReplicaID
    /// The account of ``source``.
    public var account: String
    /// The origin table: every replica whose changes or ranges the bundle carries, with its account.
    /// Changes name their origin by its position in this table.
    public var origins: [BundleOriginInfo]
    /// Which changes the bundle covers: for each listed (origin, scope), the sequence numbers `(from, to]`.
    /// Every change in the bundle lies in the range of its origin and scope.
    public var ranges: [KnowledgeRange]
    /// The number of changes in the payload.
    public var changeCount: UInt64
    /// The number of compressed payload bytes that follow the header.
    public var payloadLength: UInt64
    /// The number of bytes the payload inflates to.
    public var uncompressedLength: UInt64
    /// The CRC-32 (zlib's `crc32`, as in ZIP and PNG) of the compressed payload bytes.
    public var checksum: UInt32

    /// The format version this build writes and the newest it reads.
    public static var currentFormatVersion: UInt16 { BundleFormat.currentVersion }

    /// Creates a header. Only ``BundleWriter`` and tests need this; readers get headers from ``BundleReader``.
    public init(formatVersion: UInt16 = BundleHeader.currentFormatVersion, schemaVersion: UInt16,
                source: ReplicaID, account: String, origins: [BundleOriginInfo], ranges: [KnowledgeRange],
                changeCount: UInt64, payloadLength: UInt64, uncompressedLength: UInt64, checksum: UInt32) {
        self.formatVersion = formatVersion
        self.schemaVersion = schemaVersion
        self.source = source
        self.account = account
        self.origins = origins
        self.ranges = ranges
        self.changeCount = changeCount
        self.payloadLength = payloadLength
        self.uncompressedLength = uncompressedLength
        self.checksum = checksum
    }
}

/// Constants, limits and codecs of the bundle format (see `Schemas/bundle-format.md`).
enum BundleFormat {
    /// The first 8 bytes of every bundle: `89 52 53 42 0D 0A 1A 0A` ("\x89RSB\r\n\x1A\n", PNG-style:
    /// a high byte and line endings so text-mode transfers that mangle bytes are caught at once).
    static let magic: [UInt8] = [0x89, 0x52, 0x53, 0x42, 0x0D, 0x0A, 0x1A, 0x0A]
    /// The format version this build writes and the newest it reads.
    static let currentVersion: UInt16 = 1

    // MARK: Layout

    /// Magic, format version and header length: frozen for every format version.
    static let frozenPrefixLength = 14
    /// The fixed-width part of a version-1 header, up to the source account.
    static let fixedHeaderLength = 68
    /// The smallest possible header of any version: the frozen prefix and the header CRC.
    static let minimalAnyVersionHeaderLength = frozenPrefixLength + 4
    /// The smallest version-1 header: the fixed part, a 1-byte account length, the header CRC.
    static let minimalHeaderLength = fixedHeaderLength + 1 + 4
    /// The bytes of one encoded range: origin index u32, scope u8, from u64, to u64.
    static let encodedRangeLength = 21

    // MARK: Limits (a reader refuses more; a writer refuses to write more)

    /// The largest header, in bytes.
    static let maxHeaderLength = 128 << 20
    /// The most entries in the origin table.
    static let maxOrigins = 1_000_000
    /// The most ranges (at most one per origin and scope).
    static let maxRanges = 2 * maxOrigins
    /// The longest account name in the header, in UTF-8 bytes.
    static let maxAccountBytes = 1024
    /// The most changes one bundle may hold.
    static let maxChangeCount: UInt64 = 1 << 32
    /// The largest compressed payload, in bytes (1 TiB).
    static let maxPayloadLength: UInt64 = 1 << 40
    /// The largest uncompressed payload, in bytes (16 TiB).
    static let maxUncompressedLength: UInt64 = 1 << 44
    /// The most changes in one block.
    static let maxChangesPerBlock = 4096
    /// The largest block body, in bytes.
    static let maxBlockBodyLength = 64 << 20
    /// A writer closes a block once its body reaches this size (or it holds `maxChangesPerBlock`).
    static let targetBlockBodyLength = 1 << 20
    /// The longest string (key, field or string value), in UTF-8 bytes.
    static let maxStringBytes = 16 << 20
    /// The fewest body bytes one change can take (one byte in each of the seven per-change columns).
    static let minBytesPerChange = 7
    /// Deflate cannot expand data more than this (2 bits per 258-byte match).
    static let maxCompressionRatio: UInt64 = 1032

    /// Value type tags of the `tag` column.
    enum ValueTag: UInt8 {
        /// `.null`; no value bytes.
        case null = 0
        /// `.bool(false)`; no value bytes.
        case `false` = 1
        /// `.bool(true)`; no value bytes.
        case `true` = 2
        /// `.int`: zigzag varint of the difference from the block's previous int value (0 at block start).
        case int = 3
        /// `.double`: the 8-byte little-endian IEEE 754 bit pattern.
        case double = 4
        /// `.string`: varint byte length and UTF-8 bytes.
        case string = 5
        /// `.int`: zigzag varint of the difference from the change's own HLC milliseconds. Chosen by the
        /// writer when shorter than tag 3: read and saved times are usually the change's own time.
        case intNearTime = 6
    }

    /// The length of `value` as a varint.
    static func varintLength(_ value: UInt64) -> Int {
        var length = 1
        var v = value >> 7
        while v > 0 {
            length += 1
            v >>= 7
        }
        return length
    }

    // MARK: Varints and zigzag

    /// Zigzag-maps a signed integer so that small magnitudes become small unsigned ones.
    static func zigzag(_ value: Int64) -> UInt64 {
        UInt64(bitPattern: (value << 1) ^ (value >> 63))
    }

    /// The inverse of ``zigzag(_:)``.
    static func unzigzag(_ value: UInt64) -> Int64 {
        Int64(bitPattern: (value >> 1) ^ (0 &- (value & 1)))
    }

    /// Little-endian output buffer.
    struct ByteWriter {
        /// The bytes written so far.
        var bytes: [UInt8] = []

        /// Appends one byte.
        mutating func u8(_ value: UInt8) { bytes.append(value) }
        /// Appends 2 bytes, little-endian.
        mutating func u16(_ value: UInt16) { fixed(UInt64(value), width: 2) }
        /// Appends 4 bytes, little-endian.
        mutating func u32(_ value: UInt32) { fixed(UInt64(value), width: 4) }
        /// Appends 8 bytes, little-endian.
        mutating func u64(_ value: UInt64) { fixed(value, width: 8) }

        private mutating func fixed(_ value: UInt64, width: Int) {
            for i in 0..<width { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(i)))) }
        }

        /// Appends an unsigned LEB128 varint (7 bits per byte, low groups first, minimal length).
        mutating func varint(_ value: UInt64) {
            var v = value
            while v >= 0x80 {
                bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
                v >>= 7
            }
            bytes.append(UInt8(v))
        }

        /// Appends a zigzag varint.
        mutating func signed(_ value: Int64) { varint(BundleFormat.zigzag(value)) }

        /// Appends raw bytes.
        mutating func raw(_ data: some Sequence<UInt8>) { bytes.append(contentsOf: data) }

        /// Appends a varint byte length and the UTF-8 bytes.
        mutating func string(_ utf8: [UInt8]) {
            varint(UInt64(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    /// Bounds-checked little-endian input cursor. Every failure is a ``ReaderSyncError/invalidBundle(_:)``
    /// whose message starts with `context`.
    struct ByteReader {
        private let bytes: [UInt8]
        /// The read position.
        private(set) var position: Int
        private let end: Int
        /// The start of every error message, e.g. "bundle header is corrupt".
        let context: String

        /// A cursor over `bytes[range]`.
        init(_ bytes: [UInt8], range: Range<Int>? = nil, context: String) {
            self.bytes = bytes
            let r = range ?? 0..<bytes.count
            position = r.lowerBound
            end = r.upperBound
            self.context = context
        }

        /// Bytes left.
        var remaining: Int { end - position }

        private func fail(_ message: String) -> ReaderSyncError {
            .invalidBundle("\(context): \(message)")
        }

        private mutating func take(_ count: Int, _ what: @autoclosure () -> String) throws -> Range<Int> {
            guard count >= 0, count <= remaining else {
                throw fail("\(what()) runs past the end (\(count) bytes needed, \(remaining) left)")
            }
            defer { position += count }
            return position..<(position + count)
        }

        /// Reads one byte.
        mutating func u8(_ what: @autoclosure () -> String) throws -> UInt8 {
            bytes[try take(1, what()).lowerBound]
        }

        /// Reads a little-endian u16.
        mutating func u16(_ what: @autoclosure () -> String) throws -> UInt16 {
            UInt16(truncatingIfNeeded: try fixed(2, what()))
        }

        /// Reads a little-endian u32.
        mutating func u32(_ what: @autoclosure () -> String) throws -> UInt32 {
            UInt32(truncatingIfNeeded: try fixed(4, what()))
        }

        /// Reads a little-endian u64.
        mutating func u64(_ what: @autoclosure () -> String) throws -> UInt64 {
            try fixed(8, what())
        }

        private mutating func fixed(_ width: Int, _ what: @autoclosure () -> String) throws -> UInt64 {
            let range = try take(width, what())
            var value: UInt64 = 0
            for (i, index) in range.enumerated() { value |= UInt64(bytes[index]) << (8 * UInt64(i)) }
            return value
        }

        /// Reads a minimal unsigned LEB128 varint of at most 10 bytes that fits 64 bits.
        mutating func varint(_ what: @autoclosure () -> String) throws -> UInt64 {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            for i in 0..<10 {
                guard position < end else { throw fail("\(what()) runs past the end (unfinished varint)") }
                let byte = bytes[position]
                position += 1
                if i == 9 && byte > 1 { throw fail("\(what()) is a varint larger than 64 bits") }
                value |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 {
                    if i > 0 && byte == 0 { throw fail("\(what()) is a varint with redundant trailing zero groups") }
                    return value
                }
                shift += 7
            }
            throw fail("\(what()) is a varint longer than 10 bytes")
        }

        /// Reads a zigzag varint.
        mutating func signed(_ what: @autoclosure () -> String) throws -> Int64 {
            BundleFormat.unzigzag(try varint(what()))
        }

        /// Reads `count` raw bytes.
        mutating func raw(_ count: Int, _ what: @autoclosure () -> String) throws -> ArraySlice<UInt8> {
            bytes[try take(count, what())]
        }

        /// Reads a varint length (at most `limit`) and that many bytes of valid UTF-8.
        mutating func string(limit: Int, _ what: @autoclosure () -> String) throws -> String {
            let length = try varint("the length of \(what())")
            guard length <= UInt64(limit) else {
                throw fail("\(what()) is \(length) bytes long (limit \(limit))")
            }
            let slice = try raw(Int(length), what())
            guard let text = String(validating: slice, as: UTF8.self) else {
                throw fail("\(what()) is not valid UTF-8")
            }
            return text
        }
    }

    // MARK: Header

    /// The encoded size of a header with these tables.
    static func headerLength(account: String, origins: [BundleOriginInfo], rangeCount: Int) -> Int {
        func stringLength(_ s: String) -> Int {
            let n = s.utf8.count
            return varintLength(UInt64(n)) + n
        }
        var total = fixedHeaderLength + stringLength(account) + 4
        for origin in origins { total += 16 + stringLength(origin.account) }
        total += rangeCount * encodedRangeLength
        return total
    }

    /// Checks the origin table and ranges (limits, duplicates, UTF-8 lengths, `from <= to`) and
    /// returns each origin's index. Used by the writer on its arguments and the reader on a header.
    static func indexTables(account: String, origins: [BundleOriginInfo],
                            ranges: [KnowledgeRange], context: String) throws -> [ReplicaID: Int] {
        func fail(_ message: String) -> ReaderSyncError { .invalidBundle("\(context): \(message)") }
        guard account.utf8.count <= maxAccountBytes else {
            throw fail("the source account is \(account.utf8.count) bytes long (limit \(maxAccountBytes))")
        }
        guard origins.count <= maxOrigins else {
            throw fail("\(origins.count) origins (limit \(maxOrigins))")
        }
        guard ranges.count <= maxRanges else {
            throw fail("\(ranges.count) ranges (limit \(maxRanges))")
        }
        var index: [ReplicaID: Int] = [:]
        index.reserveCapacity(origins.count)
        for (i, origin) in origins.enumerated() {
            guard origin.account.utf8.count <= maxAccountBytes else {
                throw fail("the account of origin \(origin.id) is \(origin.account.utf8.count) bytes long (limit \(maxAccountBytes))")
            }
            guard index[origin.id] == nil else { throw fail("origin \(origin.id) is listed twice") }
            index[origin.id] = i
        }
        var seen = Set<Knowledge.Key>()
        seen.reserveCapacity(ranges.count)
        for range in ranges {
            guard index[range.origin] != nil else {
                throw fail("a range names origin \(range.origin), which is not in the origin table")
            }
            guard range.from <= range.to else {
                throw fail("the range of origin \(range.origin) (\(range.scope)) runs backwards: (\(range.from), \(range.to)]")
            }
            guard seen.insert(Knowledge.Key(origin: range.origin, scope: range.scope)).inserted else {
                throw fail("origin \(range.origin) (\(range.scope)) has two ranges")
            }
        }
        return index
    }

    /// Encodes `header` (whose tables are valid: see ``indexTables(account:origins:ranges:context:)``).
    static func encodeHeader(_ header: BundleHeader) throws -> [UInt8] {
        let length = headerLength(account: header.account, origins: header.origins, rangeCount: header.ranges.count)
        guard length <= maxHeaderLength else {
            throw ReaderSyncError.invalidBundle("the bundle header would be \(length) bytes (limit \(maxHeaderLength)); split the bundle")
        }
        var originIndex: [ReplicaID: Int] = [:]
        for (i, origin) in header.origins.enumerated() where originIndex[origin.id] == nil { originIndex[origin.id] = i }
        var w = ByteWriter()
        w.bytes.reserveCapacity(length)
        w.raw(magic)
        w.u16(header.formatVersion)
        w.u32(UInt32(length))
        w.u16(header.schemaVersion)
        w.raw(header.source.bytes)
        w.u64(header.changeCount)
        w.u64(header.payloadLength)
        w.u64(header.uncompressedLength)
        w.u32(header.checksum)
        w.u32(UInt32(header.origins.count))
        w.u32(UInt32(header.ranges.count))
        w.string(Array(header.account.utf8))
        for origin in header.origins {
            w.raw(origin.id.bytes)
            w.string(Array(origin.account.utf8))
        }
        for range in header.ranges {
            guard let index = originIndex[range.origin] else {
                throw ReaderSyncError.invalidBundle("cannot write bundle: a range names origin \(range.origin), which is not in the origin table")
            }
            w.u32(UInt32(index))
            w.u8(range.scope.rawValue)
            w.u64(range.from)
            w.u64(range.to)
        }
        w.u32(crc32(w.bytes))
        guard w.bytes.count == length else {
            throw ReaderSyncError.invalidBundle("cannot write bundle: header size computed as \(length) but encoded as \(w.bytes.count)")
        }
        return w.bytes
    }

    /// Checks the frozen prefix (magic, format version, header length) given the first bytes of a
    /// bundle (up to ``frozenPrefixLength``) and the bundle's total size; returns the header length.
    ///
    /// A newer format version is reported here when its header cannot be checked; otherwise
    /// ``decodeHeader(_:)`` reports it after verifying the header CRC.
    static func checkPrefix(_ prefix: [UInt8], totalSize: UInt64) throws -> Int {
        guard !prefix.isEmpty else { throw ReaderSyncError.invalidBundle("not a ReaderSync bundle (it is empty)") }
        let m = min(prefix.count, magic.count)
        guard prefix.prefix(m).elementsEqual(magic.prefix(m)) else {
            throw ReaderSyncError.invalidBundle("not a ReaderSync bundle (wrong magic)")
        }
        guard prefix.count >= frozenPrefixLength else {
            throw ReaderSyncError.invalidBundle("bundle is truncated: it is \(totalSize) bytes, shorter than the smallest header (\(minimalHeaderLength) bytes)")
        }
        var r = ByteReader(prefix, context: "bundle header is corrupt")
        _ = try r.raw(magic.count, "the magic")
        let version = try r.u16("the format version")
        let length = try r.u32("the header length")
        guard version != 0 else { throw ReaderSyncError.invalidBundle("bundle format version 0 is not valid") }
        if version > currentVersion {
            // Verifiable only if the header is plausible and present; decodeHeader checks its CRC.
            guard length >= minimalAnyVersionHeaderLength, length <= maxHeaderLength, UInt64(length) <= totalSize else {
                throw newerVersion(version)
            }
            return Int(length)
        }
        guard length >= minimalHeaderLength, length <= maxHeaderLength else {
            throw ReaderSyncError.invalidBundle("bundle header length \(length) is invalid (minimum \(minimalHeaderLength), limit \(maxHeaderLength))")
        }
        guard UInt64(length) <= totalSize else {
            throw ReaderSyncError.invalidBundle("bundle is truncated: the header is \(length) bytes, the bundle has \(totalSize)")
        }
        return Int(length)
    }

    private static func newerVersion(_ version: UInt16) -> ReaderSyncError {
        .invalidBundle("bundle format version \(version) is newer than this build supports (\(currentVersion)); upgrade ReaderSync")
    }

    /// Decodes and validates a whole header (`bytes` is exactly the header, as long as
    /// ``checkPrefix(_:totalSize:)`` said): CRC, version, fields, limits, tables.
    static func decodeHeader(_ bytes: [UInt8]) throws -> BundleHeader {
        guard bytes.count >= minimalAnyVersionHeaderLength else {
            throw ReaderSyncError.invalidBundle("bundle is truncated: the header is \(bytes.count) bytes")
        }
        var tail = ByteReader(bytes, range: (bytes.count - 4)..<bytes.count, context: "bundle header is corrupt")
        let stored = try tail.u32("the header checksum")
        let computed = crc32(bytes[0..<(bytes.count - 4)])
        guard stored == computed else {
            throw ReaderSyncError.invalidBundle(
                "bundle header checksum mismatch (stored 0x\(hex(stored)), computed 0x\(hex(computed)))")
        }
        var r = ByteReader(bytes, range: 0..<(bytes.count - 4), context: "bundle header is corrupt")
        _ = try r.raw(magic.count, "the magic")
        let version = try r.u16("the format version")
        if version > currentVersion { throw newerVersion(version) }
        guard version == currentVersion else { throw ReaderSyncError.invalidBundle("bundle format version \(version) is not valid") }
        let length = try r.u32("the header length")
        guard length == bytes.count else {
            throw ReaderSyncError.invalidBundle("bundle header is corrupt: it says it is \(length) bytes, but \(bytes.count) were read")
        }
        let schemaVersion = try r.u16("the schema version")
        guard let source = ReplicaID(bytes: try r.raw(16, "the source replica id")) else {
            throw ReaderSyncError.invalidBundle("bundle header is corrupt: bad source replica id")
        }
        let changeCount = try r.u64("the change count")
        let payloadLength = try r.u64("the payload length")
        let uncompressedLength = try r.u64("the uncompressed length")
        let checksum = try r.u32("the payload checksum")
        let originCount = try r.u32("the origin count")
        let rangeCount = try r.u32("the range count")

        guard changeCount <= maxChangeCount else {
            throw ReaderSyncError.invalidBundle("bundle header claims \(changeCount) changes (limit \(maxChangeCount))")
        }
        guard payloadLength <= maxPayloadLength else {
            throw ReaderSyncError.invalidBundle("bundle header claims a payload of \(payloadLength) bytes (limit \(maxPayloadLength))")
        }
        guard uncompressedLength <= maxUncompressedLength else {
            throw ReaderSyncError.invalidBundle("bundle header claims the payload inflates to \(uncompressedLength) bytes (limit \(maxUncompressedLength))")
        }
        guard originCount <= maxOrigins else {
            throw ReaderSyncError.invalidBundle("bundle header claims \(originCount) origins (limit \(maxOrigins))")
        }
        guard rangeCount <= maxRanges else {
            throw ReaderSyncError.invalidBundle("bundle header claims \(rangeCount) ranges (limit \(maxRanges))")
        }
        // Each origin takes at least 17 bytes and each range 21: refuse counts the header cannot hold
        // before allocating anything for them.
        let needed = UInt64(originCount) * 17 + UInt64(rangeCount) * UInt64(encodedRangeLength)
        guard needed <= UInt64(r.remaining) else {
            throw ReaderSyncError.invalidBundle(
                "bundle header is corrupt: \(originCount) origins and \(rangeCount) ranges need at least \(needed) bytes, the header has \(r.remaining) left")
        }

        let account = try r.string(limit: maxAccountBytes, "the source account")
        var origins: [BundleOriginInfo] = []
        origins.reserveCapacity(Int(originCount))
        for i in 0..<Int(originCount) {
            guard let id = ReplicaID(bytes: try r.raw(16, "the id of origin \(i)")) else {
                throw ReaderSyncError.invalidBundle("bundle header is corrupt: bad id of origin \(i)")
            }
            let originAccount = try r.string(limit: maxAccountBytes, "the account of origin \(i)")
            origins.append(BundleOriginInfo(id: id, account: originAccount))
        }
        var ranges: [KnowledgeRange] = []
        ranges.reserveCapacity(Int(rangeCount))
        for i in 0..<Int(rangeCount) {
            let index = try r.u32("the origin index of range \(i)")
            guard index < originCount else {
                throw ReaderSyncError.invalidBundle("bundle header is corrupt: range \(i) names origin index \(index), but the table has \(originCount) origins")
            }
            let scopeTag = try r.u8("the scope of range \(i)")
            guard let scope = ChangeScope(rawValue: scopeTag) else {
                throw ReaderSyncError.invalidBundle("bundle header is corrupt: range \(i) has unknown scope \(scopeTag)")
            }
            let from = try r.u64("the start of range \(i)")
            let to = try r.u64("the end of range \(i)")
            ranges.append(KnowledgeRange(origin: origins[Int(index)].id, scope: scope, from: from, to: to))
        }
        guard r.remaining == 0 else {
            throw ReaderSyncError.invalidBundle("bundle header is corrupt: \(r.remaining) unexpected bytes before its checksum")
        }
        _ = try indexTables(account: account, origins: origins, ranges: ranges, context: "bundle header is invalid")

        // Cross-checks that catch absurd but well-formed headers early.
        let span = ranges.reduce(UInt64(0)) { total, range in
            let (sum, overflow) = total.addingReportingOverflow(range.to - range.from)
            return overflow ? .max : sum
        }
        guard changeCount <= span else {
            throw ReaderSyncError.invalidBundle("bundle header claims \(changeCount) changes, but its ranges cover only \(span) sequence numbers")
        }
        let minimumUncompressed = changeCount * UInt64(minBytesPerChange) + 1
        guard uncompressedLength >= minimumUncompressed else {
            throw ReaderSyncError.invalidBundle(
                "bundle header claims \(changeCount) changes in \(uncompressedLength) uncompressed bytes (at least \(minimumUncompressed) needed)")
        }
        guard uncompressedLength / maxCompressionRatio <= payloadLength else {
            throw ReaderSyncError.invalidBundle(
                "bundle header claims \(payloadLength) compressed bytes inflate to \(uncompressedLength) (more than deflate's \(maxCompressionRatio):1)")
        }
        return BundleHeader(formatVersion: version, schemaVersion: schemaVersion, source: source, account: account,
                            origins: origins, ranges: ranges, changeCount: changeCount, payloadLength: payloadLength,
                            uncompressedLength: uncompressedLength, checksum: checksum)
    }

    /// Checks that a bundle of `totalSize` bytes holds exactly the header and the payload it declares.
    static func checkSize(_ header: BundleHeader, headerLength: Int, totalSize: UInt64) throws {
        let available = totalSize - min(totalSize, UInt64(headerLength))
        if available < header.payloadLength {
            throw ReaderSyncError.invalidBundle(
                "bundle is truncated: header says \(header.payloadLength) payload bytes, file has \(available)")
        }
        if available > header.payloadLength {
            throw ReaderSyncError.invalidBundle(
                "bundle has \(available - header.payloadLength) unexpected bytes after its \(header.payloadLength)-byte payload")
        }
    }

    /// Checks the payload CRC.
    static func checkChecksum(_ header: BundleHeader, computed: UInt32) throws {
        guard computed == header.checksum else {
            throw ReaderSyncError.invalidBundle(
                "bundle checksum mismatch (header 0x\(hex(header.checksum)), payload 0x\(hex(computed)))")
        }
    }

    /// 8 lowercase hex digits.
    static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }

    // MARK: Change validation (writer and reader)

    /// The checks every change of a bundle passes, in stream order: its field is allowed for its entity,
    /// its (origin, scope) has a range with `from < seq <= to`, and seqs per (origin, scope) strictly increase.
    struct ChangeValidator {
        private struct Key: Hashable {
            var origin: Int
            var scope: ChangeScope
        }

        private var ranges: [Key: (from: UInt64, to: UInt64)] = [:]
        private var last: [Key: UInt64] = [:]

        /// A validator for a bundle with these (already checked) ranges.
        init(ranges: [KnowledgeRange], originIndex: [ReplicaID: Int]) {
            for range in ranges {
                if let index = originIndex[range.origin] {
                    self.ranges[Key(origin: index, scope: range.scope)] = (range.from, range.to)
                }
            }
        }

        /// Checks change number `number` (1-based, stream order) whose origin is `originIndex`.
        mutating func check(_ change: Change, originIndex: Int, number: UInt64) throws {
            guard ChangeField.allowed(for: change.entity).contains(change.field) else {
                throw ReaderSyncError.invalidBundle("change \(number): field '\(change.field)' is not allowed for \(change.entity)")
            }
            let key = Key(origin: originIndex, scope: change.scope)
            guard let range = ranges[key] else {
                throw ReaderSyncError.invalidBundle(
                    "change \(number): the bundle has no range for origin \(change.origin) (\(change.scope))")
            }
            guard change.seq > range.from, change.seq <= range.to else {
                throw ReaderSyncError.invalidBundle(
                    "change \(number): seq \(change.seq) of origin \(change.origin) (\(change.scope)) is outside the bundle's range (\(range.from), \(range.to)]")
            }
            if let previous = last[key], change.seq <= previous {
                throw ReaderSyncError.invalidBundle(
                    "change \(number): seq \(change.seq) of origin \(change.origin) (\(change.scope)) does not follow the previous one (\(previous))")
            }
            last[key] = change.seq
        }
    }

    // MARK: Blocks

    /// Builds one block's columns, one change at a time. See the spec for the column layout.
    struct BlockEncoder {
        private(set) var count = 0
        private var originColumn = ByteWriter()
        private var seqColumn = ByteWriter()
        private var hlcColumn = ByteWriter()
        private var entityColumn = ByteWriter()
        private var keyColumn = ByteWriter()
        private var fieldColumn = ByteWriter()
        private var tagColumn = ByteWriter()
        private var valueColumn = ByteWriter()
        // Interned by UTF-8 bytes, not String equality: canonically equivalent strings stay distinct.
        private var keyTable: [[UInt8]: UInt64] = [:]
        private var fieldTable: [[UInt8]: UInt64] = [:]
        private var lastSeq: [Int: UInt64] = [:]
        private var lastMillis: UInt64 = 0
        private var lastInt: Int64 = 0

        /// The size of the block body so far.
        var bodyLength: Int {
            originColumn.bytes.count + seqColumn.bytes.count + hlcColumn.bytes.count + entityColumn.bytes.count
                + keyColumn.bytes.count + fieldColumn.bytes.count + tagColumn.bytes.count + valueColumn.bytes.count
        }

        /// Adds a change whose origin has index `originIndex` in the origin table. No validation.
        mutating func append(_ change: Change, originIndex: Int) {
            count += 1
            originColumn.varint(UInt64(originIndex))
            let previousSeq = lastSeq[originIndex] ?? 0
            seqColumn.signed(Int64(bitPattern: change.seq &- previousSeq))
            lastSeq[originIndex] = change.seq
            let millis = change.hlc.millis
            let counter = change.hlc.counter
            let delta = BundleFormat.zigzag(Int64(bitPattern: millis &- lastMillis))
            hlcColumn.varint(delta << 1 | (counter == 0 ? 0 : 1))
            if counter != 0 { hlcColumn.varint(UInt64(counter)) }
            lastMillis = millis
            entityColumn.u8(change.entity.rawValue)
            Self.intern(Array(change.key.utf8), table: &keyTable, column: &keyColumn)
            Self.intern(Array(change.field.utf8), table: &fieldTable, column: &fieldColumn)
            switch change.value {
            case .null:
                tagColumn.u8(ValueTag.null.rawValue)
            case .bool(let b):
                tagColumn.u8(b ? ValueTag.true.rawValue : ValueTag.false.rawValue)
            case .int(let i):
                let fromPrevious = BundleFormat.zigzag(i &- lastInt)
                let fromTime = BundleFormat.zigzag(i &- Int64(millis))
                if BundleFormat.varintLength(fromTime) < BundleFormat.varintLength(fromPrevious) {
                    tagColumn.u8(ValueTag.intNearTime.rawValue)
                    valueColumn.varint(fromTime)
                } else {
                    tagColumn.u8(ValueTag.int.rawValue)
                    valueColumn.varint(fromPrevious)
                }
                lastInt = i
            case .double(let d):
                tagColumn.u8(ValueTag.double.rawValue)
                valueColumn.u64(d.bitPattern)
            case .string(let s):
                tagColumn.u8(ValueTag.string.rawValue)
                valueColumn.string(Array(s.utf8))
            }
        }

        private static func intern(_ utf8: [UInt8], table: inout [[UInt8]: UInt64], column: inout ByteWriter) {
            if let id = table[utf8] {
                column.varint(id)
            } else {
                let id = UInt64(table.count)
                table[utf8] = id
                column.varint(id)
                column.string(utf8)
            }
        }

        /// The framed block (`count`, body length, body) and a fresh encoder state.
        mutating func take() -> [UInt8] {
            var w = ByteWriter()
            w.varint(UInt64(count))
            w.varint(UInt64(bodyLength))
            w.bytes.reserveCapacity(w.bytes.count + bodyLength)
            for column in [originColumn, seqColumn, hlcColumn, entityColumn, keyColumn, fieldColumn, tagColumn, valueColumn] {
                w.raw(column.bytes)
            }
            self = BlockEncoder()
            return w.bytes
        }
    }

    /// Decodes one block body into changes (with origin indices), checking every tag, index, length and
    /// UTF-8 string, and that the columns end exactly at the end of the body.
    /// `firstNumber` is the 1-based stream number of the block's first change, for messages.
    static func decodeBlock(_ body: [UInt8], count: Int, origins: [BundleOriginInfo], blockNumber: Int,
                            firstNumber: UInt64) throws -> [(change: Change, originIndex: Int)] {
        var r = ByteReader(body, context: "bundle payload is corrupt: block \(blockNumber)")
        func number(_ i: Int) -> UInt64 { firstNumber + UInt64(i) }

        var originIndices = [Int](repeating: 0, count: count)
        for i in 0..<count {
            let index = try r.varint("the origin of change \(number(i))")
            guard index < UInt64(origins.count) else {
                throw ReaderSyncError.invalidBundle(
                    "change \(number(i)): origin index \(index) is not in the origin table (\(origins.count) origins)")
            }
            originIndices[i] = Int(index)
        }
        var seqs = [UInt64](repeating: 0, count: count)
        var lastSeq: [Int: UInt64] = [:]
        for i in 0..<count {
            let delta = try r.signed("the seq of change \(number(i))")
            let seq = (lastSeq[originIndices[i]] ?? 0) &+ UInt64(bitPattern: delta)
            lastSeq[originIndices[i]] = seq
            seqs[i] = seq
        }
        var hlcs = [HLCTimestamp](repeating: .zero, count: count)
        var lastMillis: Int64 = 0
        for i in 0..<count {
            let packed = try r.varint("the hlc of change \(number(i))")
            let delta = unzigzag(packed >> 1)
            let (millis, overflow) = lastMillis.addingReportingOverflow(delta)
            guard !overflow, millis >= 0, millis < 1 << 48 else {
                throw ReaderSyncError.invalidBundle("change \(number(i)): hlc milliseconds out of range")
            }
            var counter: UInt64 = 0
            if packed & 1 == 1 {
                counter = try r.varint("the hlc counter of change \(number(i))")
                guard counter >= 1, counter <= UInt64(UInt16.max) else {
                    throw ReaderSyncError.invalidBundle("change \(number(i)): hlc counter \(counter) out of range (1…65535)")
                }
            }
            lastMillis = millis
            hlcs[i] = HLCTimestamp(millis: UInt64(millis), counter: UInt16(counter))
        }
        var entities = [EntityKind](repeating: .article, count: count)
        for i in 0..<count {
            let tag = try r.u8("the entity of change \(number(i))")
            guard let entity = EntityKind(rawValue: tag) else {
                throw ReaderSyncError.invalidBundle("change \(number(i)): unknown entity kind \(tag)")
            }
            entities[i] = entity
        }
        func strings(_ what: String) throws -> [String] {
            var table: [String] = []
            var result: [String] = []
            result.reserveCapacity(count)
            for i in 0..<count {
                let id = try r.varint("the \(what) of change \(number(i))")
                if id < UInt64(table.count) {
                    result.append(table[Int(id)])
                } else if id == UInt64(table.count) {
                    let text = try r.string(limit: maxStringBytes, "the \(what) of change \(number(i))")
                    table.append(text)
                    result.append(text)
                } else {
                    throw ReaderSyncError.invalidBundle(
                        "change \(number(i)): \(what) reference \(id) is past the block's \(what) table (\(table.count) entries)")
                }
            }
            return result
        }
        let keys = try strings("key")
        let fields = try strings("field")
        var tags = [ValueTag](repeating: .null, count: count)
        for i in 0..<count {
            let raw = try r.u8("the value type of change \(number(i))")
            guard let tag = ValueTag(rawValue: raw) else {
                throw ReaderSyncError.invalidBundle("change \(number(i)): unknown value type \(raw)")
            }
            tags[i] = tag
        }
        var result: [(change: Change, originIndex: Int)] = []
        result.reserveCapacity(count)
        var lastInt: Int64 = 0
        for i in 0..<count {
            let value: ChangeValue
            switch tags[i] {
            case .null: value = .null
            case .false: value = .bool(false)
            case .true: value = .bool(true)
            case .int, .intNearTime:
                let delta = try r.signed("the value of change \(number(i))")
                let base = tags[i] == .int ? lastInt : Int64(hlcs[i].millis)
                let int = base &+ delta
                lastInt = int
                value = .int(int)
            case .double:
                value = .double(Double(bitPattern: try r.u64("the value of change \(number(i))")))
            case .string:
                value = .string(try r.string(limit: maxStringBytes, "the value of change \(number(i))"))
            }
            let change = Change(origin: origins[originIndices[i]].id, seq: seqs[i], hlc: hlcs[i], entity: entities[i],
                                key: keys[i], field: fields[i], value: value)
            result.append((change, originIndices[i]))
        }
        guard r.remaining == 0 else {
            throw ReaderSyncError.invalidBundle(
                "bundle payload is corrupt: block \(blockNumber): \(r.remaining) unexpected bytes after the last column")
        }
        return result
    }
}
