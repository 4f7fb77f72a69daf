import Foundation

// The delta-bundle binary format: constants, limits and the header. The byte-by-byte specification is
// `Schemas/bundle-format.md`; keep the two in step.

/// A replica as a bundle's origin table names it: its id and its account (an origin is the pair).
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

    /// Compares accounts byte for byte.
    public static func == (lhs: BundleOriginInfo, rhs: BundleOriginInfo) -> Bool {
        lhs.id == rhs.id && lhs.account.utf8.elementsEqual(rhs.account.utf8)
    }

    /// Hashes the account's bytes.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(id)
        for byte in account.utf8 { hasher.combine(byte) }
    }
}

/// What a bundle's sender knew of one origin and scope when it wrote the bundle: format 2 carries the
/// receiver's own origin here, so a replica restored from a backup learns that others hold more of its history.
public struct BundleAcknowledgement: Sendable, Hashable {
    /// The origin.
    public var origin: ReplicaID
    /// Its account.
    public var account: String
    /// The scope.
    public var scope: ChangeScope
    /// The sender holds that origin's changes up to here…
    public var seq: UInt64
    /// …and this was the origin's incarnation at `seq` (0: unknown).
    public var incarnation: UInt64

    /// Creates an acknowledgement.
    public init(origin: ReplicaID, account: String, scope: ChangeScope, seq: UInt64, incarnation: UInt64) {
        self.origin = origin
        self.account = account
        self.scope = scope
        self.seq = seq
        self.incarnation = incarnation
    }
}

/// What a bundle's header says: who wrote it, which changes it covers, and how to check its payload.
///
/// `BundleReader` only hands out a header after checking the header's own CRC-32, its limits and
/// its tables, that the file holds exactly `payloadLength` payload bytes, and that their CRC-32 is
/// `checksum`. The changes themselves are validated as they are read.
public struct BundleHeader: Sendable, Equatable {
    /// The version of the bundle format (``currentFormatVersion`` for bundles this build writes; it reads 1 too).
    public var formatVersion: UInt16
    /// The store schema version of the replica that wrote the bundle. Informational for the bundle
    /// layer: the store decides whether it can apply changes written under that schema.
    public var schemaVersion: UInt16
    /// The replica that wrote the bundle.
    public var source: ReplicaID
    /// The account of ``source``.
    public var account: String
    /// The sender's wall clock when it wrote the bundle (ms since 1970), or nil (format 1, or unknown): lets a
    /// receiver tell whose clock is off when a change is stamped far ahead.
    public var writtenAtMillis: Int64?
    /// The origin table: every origin whose changes or ranges the bundle carries.
    /// Changes name their origin by its position in this table.
    public var origins: [BundleOriginInfo]
    /// Which changes the bundle covers: for each listed (origin, scope), the sequence numbers `(from, to]`.
    /// Every change in the bundle lies in the range of its origin and scope.
    public var ranges: [KnowledgeRange]
    /// What the sender knew of the receiver's own origin (format 2; at most one per scope).
    public var acknowledgements: [BundleAcknowledgement]
    /// The number of changes in the payload.
    public var changeCount: UInt64
    /// The number of compressed payload bytes that follow the header.
    public var payloadLength: UInt64
    /// The number of bytes the payload inflates to.
    public var uncompressedLength: UInt64
    /// The CRC-32 (zlib's `crc32`, as in ZIP and PNG) of the compressed payload bytes.
    public var checksum: UInt32

    /// The format version this build writes.
    public static var currentFormatVersion: UInt16 { BundleFormat.currentVersion }

    /// Creates a header. Only `BundleWriter` and tests need this; readers get headers from `BundleReader`.
    public init(formatVersion: UInt16 = BundleHeader.currentFormatVersion, schemaVersion: UInt16,
                source: ReplicaID, account: String, writtenAtMillis: Int64? = nil, origins: [BundleOriginInfo],
                ranges: [KnowledgeRange], acknowledgements: [BundleAcknowledgement] = [],
                changeCount: UInt64, payloadLength: UInt64, uncompressedLength: UInt64, checksum: UInt32) {
        self.formatVersion = formatVersion
        self.schemaVersion = schemaVersion
        self.source = source
        self.account = account
        self.writtenAtMillis = writtenAtMillis
        self.origins = origins
        self.ranges = ranges
        self.acknowledgements = acknowledgements
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
    static let currentVersion: UInt16 = 2
    /// The oldest format version this build reads.
    static let oldestVersion: UInt16 = 1

    // MARK: Layout

    /// Magic, format version and header length: frozen for every format version.
    static let frozenPrefixLength = 14
    /// The smallest possible header of any version: the frozen prefix and the header CRC.
    static let minimalAnyVersionHeaderLength = frozenPrefixLength + 4

    /// The fixed-width part of a version-1 header, up to the source account.
    static let fixedHeaderLengthV1 = 68
    /// The fixed-width part of a version-2 header, up to the source account.
    static let fixedHeaderLengthV2 = 78
    /// The smallest header of `version`: the fixed part, a 1-byte account length, (v2) the acknowledgement count,
    /// the header CRC.
    static func minimalHeaderLength(version: UInt16) -> Int {
        version == 1 ? fixedHeaderLengthV1 + 1 + 4 : fixedHeaderLengthV2 + 1 + 1 + 4
    }
    /// The bytes of one encoded range: origin index u32, scope u8, from u64, to u64 (and, v2, incarnation u64).
    static func encodedRangeLength(version: UInt16) -> Int { version == 1 ? 21 : 29 }

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
    /// The largest sequence number or range end (the store holds signed 64-bit integers).
    static let maxSeq: UInt64 = UInt64(Int64.max)
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
    /// The longest string value (and, format 1, key or field), in UTF-8 bytes.
    static let maxStringBytes = 16 << 20
    /// Format 2: the longest key, in UTF-8 bytes.
    static let maxKeyBytes = 64 << 10
    /// Format 2: the most keys in a bundle's key table, and their total bytes.
    static let maxKeyTableEntries = 4 << 20
    static let maxKeyTableBytes = 256 << 20
    /// The fewest body bytes one change can take (one byte in each of the seven per-change columns).
    static let minBytesPerChange = 7
    /// Deflate cannot expand data more than this (2 bits per 258-byte match).
    static let maxCompressionRatio: UInt64 = 1032
    /// The most acknowledgements in a format-2 header.
    static let maxAcknowledgements = 2

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
        /// Format 2, `.double`: a decimal `m / 10^e`, as a zigzag varint `m` (|m| ≤ 2^53) and a byte `e` (0…15).
        case decimal = 7
    }

    // MARK: Header

    /// The encoded size of a header with these tables.
    static func headerLength(version: UInt16, account: String, origins: [BundleOriginInfo], rangeCount: Int,
                             acknowledgements: [BundleAcknowledgement]) -> Int {
        func stringLength(_ s: String) -> Int {
            let n = s.utf8.count
            return varintLength(UInt64(n)) + n
        }
        var total = (version == 1 ? fixedHeaderLengthV1 : fixedHeaderLengthV2) + stringLength(account) + 4
        for origin in origins { total += 16 + stringLength(origin.account) }
        total += rangeCount * encodedRangeLength(version: version)
        if version >= 2 {
            total += 1
            for ack in acknowledgements { total += 16 + stringLength(ack.account) + 1 + 8 + 8 }
        }
        return total
    }

    /// Checks the origin table and ranges (limits, duplicates, account names, `from <= to <= 2^63-1`) and
    /// returns each origin's index. Used by the writer on its arguments and the reader on a header.
    static func indexTables(account: String, origins: [BundleOriginInfo], ranges: [KnowledgeRange],
                            context: String) throws -> [BundleOriginInfo: Int] {
        func fail(_ message: String) -> ReaderSyncError { .invalidBundle("\(context): \(message)") }
        guard account.utf8.count <= maxAccountBytes else {
            throw fail("the source account is \(account.utf8.count) bytes long (limit \(maxAccountBytes))")
        }
        guard origins.count <= maxOrigins else { throw fail("\(origins.count) origins (limit \(maxOrigins))") }
        guard ranges.count <= maxRanges else { throw fail("\(ranges.count) ranges (limit \(maxRanges))") }
        var index: [BundleOriginInfo: Int] = [:]
        index.reserveCapacity(origins.count)
        for (i, origin) in origins.enumerated() {
            guard origin.account.utf8.count <= maxAccountBytes else {
                throw fail("the account of origin \(origin.id) is \(origin.account.utf8.count) bytes long (limit \(maxAccountBytes))")
            }
            guard index[origin] == nil else { throw fail("origin \(origin.id) (\(Keys.printable(origin.account))) is listed twice") }
            index[origin] = i
        }
        var seen = Set<Knowledge.Key>()
        seen.reserveCapacity(ranges.count)
        for range in ranges {
            let name = "\(range.origin) (\(Keys.printable(range.account)), \(range.scope))"
            guard index[BundleOriginInfo(id: range.origin, account: range.account)] != nil else {
                throw fail("a range names origin \(name), which is not in the origin table")
            }
            guard range.from <= range.to else { throw fail("the range of origin \(name) runs backwards: (\(range.from), \(range.to)]") }
            guard range.to <= maxSeq else {
                throw fail("the range of origin \(name) ends at \(range.to), past the largest sequence number \(maxSeq)")
            }
            guard seen.insert(range.key).inserted else { throw fail("origin \(name) has two ranges") }
        }
        return index
    }

    /// Checks a writer's acknowledgements against what a reader accepts: at most two, accounts within the limit,
    /// seqs at most 2^63 − 1.
    static func checkAcknowledgements(_ acknowledgements: [BundleAcknowledgement], context: String) throws {
        func fail(_ message: String) -> ReaderSyncError { .invalidBundle("\(context): \(message)") }
        guard acknowledgements.count <= maxAcknowledgements else {
            throw fail("\(acknowledgements.count) acknowledgements (limit \(maxAcknowledgements))")
        }
        for (i, ack) in acknowledgements.enumerated() {
            guard ack.account.utf8.count <= maxAccountBytes else {
                throw fail("the account of acknowledgement \(i) is \(ack.account.utf8.count) bytes long (limit \(maxAccountBytes))")
            }
            guard ack.seq <= maxSeq else {
                throw fail("acknowledgement \(i) claims seq \(ack.seq), past \(maxSeq)")
            }
        }
    }

    /// Encodes `header` (whose tables are valid: see ``indexTables(account:origins:ranges:context:)``).
    static func encodeHeader(_ header: BundleHeader) throws -> [UInt8] {
        let version = header.formatVersion
        guard version == 1 || version == 2 else {
            throw ReaderSyncError.invalidBundle("cannot write bundle format version \(version)")
        }
        let length = headerLength(version: version, account: header.account, origins: header.origins,
                                  rangeCount: header.ranges.count, acknowledgements: header.acknowledgements)
        guard length <= maxHeaderLength else {
            throw ReaderSyncError.invalidBundle("the bundle header would be \(length) bytes (limit \(maxHeaderLength)); split the bundle")
        }
        guard header.acknowledgements.count <= maxAcknowledgements, version >= 2 || header.acknowledgements.isEmpty else {
            throw ReaderSyncError.invalidBundle("cannot write bundle: \(header.acknowledgements.count) acknowledgements (limit \(maxAcknowledgements))")
        }
        var originIndex: [BundleOriginInfo: Int] = [:]
        for (i, origin) in header.origins.enumerated() where originIndex[origin] == nil { originIndex[origin] = i }
        var w = ByteWriter()
        w.bytes.reserveCapacity(length)
        w.raw(magic)
        w.u16(version)
        w.u32(UInt32(length))
        w.u16(header.schemaVersion)
        if version >= 2 {
            w.u8(0)  // kind: delta
            w.u8(0)  // flags
        }
        w.raw(header.source.bytes)
        if version >= 2 { w.u64(UInt64(bitPattern: header.writtenAtMillis ?? 0)) }
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
            guard let index = originIndex[BundleOriginInfo(id: range.origin, account: range.account)] else {
                throw ReaderSyncError.invalidBundle("cannot write bundle: a range names origin \(range.origin), which is not in the origin table")
            }
            w.u32(UInt32(index))
            w.u8(range.scope.rawValue)
            w.u64(range.from)
            w.u64(range.to)
            if version >= 2 { w.u64(range.toIncarnation) }
        }
        if version >= 2 {
            w.u8(UInt8(header.acknowledgements.count))
            for ack in header.acknowledgements {
                w.raw(ack.origin.bytes)
                w.string(Array(ack.account.utf8))
                w.u8(ack.scope.rawValue)
                w.u64(ack.seq)
                w.u64(ack.incarnation)
            }
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
            throw ReaderSyncError.invalidBundle(
                "bundle is truncated: it is \(totalSize) bytes, shorter than the smallest header (\(minimalHeaderLength(version: 1)) bytes)")
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
        let minimum = minimalHeaderLength(version: version)
        guard length >= minimum, length <= maxHeaderLength else {
            throw ReaderSyncError.invalidBundle("bundle header length \(length) is invalid (minimum \(minimum), limit \(maxHeaderLength))")
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
        guard version >= oldestVersion else { throw ReaderSyncError.invalidBundle("bundle format version \(version) is not valid") }
        let length = try r.u32("the header length")
        guard length == bytes.count else {
            throw ReaderSyncError.invalidBundle("bundle header is corrupt: it says it is \(length) bytes, but \(bytes.count) were read")
        }
        let schemaVersion = try r.u16("the schema version")
        if version >= 2 {
            let kind = try r.u8("the bundle kind")
            guard kind == 0 else {
                throw ReaderSyncError.invalidBundle("bundle kind \(kind) is not known to this build (0, a delta); upgrade ReaderSync")
            }
            let flags = try r.u8("the flags")
            guard flags == 0 else { throw ReaderSyncError.invalidBundle("bundle header is invalid: unknown flags 0x\(String(flags, radix: 16))") }
        }
        guard let source = ReplicaID(bytes: try r.raw(16, "the source replica id")) else {
            throw ReaderSyncError.invalidBundle("bundle header is corrupt: bad source replica id")
        }
        var writtenAt: Int64?
        if version >= 2 {
            let raw = Int64(bitPattern: try r.u64("the time the bundle was written"))
            writtenAt = raw == 0 ? nil : raw
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
        // Each origin takes at least 17 bytes and each range 21 (29): refuse counts the header cannot hold
        // before allocating anything for them.
        let needed = UInt64(originCount) * 17 + UInt64(rangeCount) * UInt64(encodedRangeLength(version: version))
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
            let incarnation = version >= 2 ? try r.u64("the incarnation of range \(i)") : 0
            let origin = origins[Int(index)]
            ranges.append(KnowledgeRange(origin: origin.id, account: origin.account, scope: scope, from: from, to: to,
                                         toIncarnation: incarnation))
        }
        var acknowledgements: [BundleAcknowledgement] = []
        if version >= 2 {
            let count = try r.u8("the acknowledgement count")
            guard count <= maxAcknowledgements else {
                throw ReaderSyncError.invalidBundle("bundle header is invalid: \(count) acknowledgements (limit \(maxAcknowledgements))")
            }
            for i in 0..<Int(count) {
                guard let id = ReplicaID(bytes: try r.raw(16, "the origin of acknowledgement \(i)")) else {
                    throw ReaderSyncError.invalidBundle("bundle header is corrupt: bad origin of acknowledgement \(i)")
                }
                let ackAccount = try r.string(limit: maxAccountBytes, "the account of acknowledgement \(i)")
                let scopeTag = try r.u8("the scope of acknowledgement \(i)")
                guard let scope = ChangeScope(rawValue: scopeTag) else {
                    throw ReaderSyncError.invalidBundle("bundle header is corrupt: acknowledgement \(i) has unknown scope \(scopeTag)")
                }
                let seq = try r.u64("the seq of acknowledgement \(i)")
                guard seq <= maxSeq else {
                    throw ReaderSyncError.invalidBundle("bundle header is invalid: acknowledgement \(i) claims seq \(seq), past \(maxSeq)")
                }
                let incarnation = try r.u64("the incarnation of acknowledgement \(i)")
                acknowledgements.append(BundleAcknowledgement(origin: id, account: ackAccount, scope: scope, seq: seq,
                                                              incarnation: incarnation))
            }
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
                            writtenAtMillis: writtenAt, origins: origins, ranges: ranges,
                            acknowledgements: acknowledgements, changeCount: changeCount, payloadLength: payloadLength,
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
}
