import Foundation

// The payload's blocks: nine columns per block in format 2, eight in format 1 (`Schemas/bundle-format.md` §5 and
// Appendix A), and the checks every change passes on the way in and out.

/// One decoded block, column by column, as the merge path consumes it: keys are indexes into the bundle's
/// key table (``BundleKeyTable``), origins indexes into the header's origin table.
struct DecodedBlock {
    var count: Int
    /// The 1-based stream number of the block's first change (for messages).
    var firstNumber: UInt64
    var origin: [Int32]
    var seq: [UInt64]
    var hlc: [UInt64]
    var entity: [EntityKind]
    var key: [Int32]
    var field: [FieldCode]
    var value: [ChangeValue]
}

/// The keys of a bundle, interned byte for byte: format 2 carries one table for the whole bundle (a key's text
/// once per bundle, a repeated text is refused); format 1 one per block, which the reader merges into one so both
/// look alike.
struct BundleKeyTable {
    private(set) var keys: [String] = []
    private var index: [ByteString: Int32] = [:]
    private(set) var totalBytes = 0

    var count: Int { keys.count }

    subscript(i: Int32) -> String { keys[Int(i)] }

    /// Appends a key the table does not hold.
    private mutating func append(_ key: String) -> Int32 {
        let id = Int32(keys.count)
        keys.append(key)
        totalBytes += key.utf8.count
        return id
    }

    /// The index of `key`, if the table holds it.
    func id(of key: String) -> Int32? { index[ByteString(key)] }

    /// The index of `key`, adding it if new.
    mutating func intern(_ key: String) -> (id: Int32, isNew: Bool) {
        let bytes = ByteString(key)
        if let id = index[bytes] { return (id, false) }
        let id = append(key)
        index[bytes] = id
        return (id, true)
    }
}

extension BundleFormat {
    // MARK: Change validation (writer and reader)

    /// The checks every change of a bundle passes, in stream order: its field belongs to its entity, its
    /// (origin, scope) has a range with `from < seq <= to`, and seqs per (origin, scope) strictly increase.
    struct ChangeValidator {
        private struct Key: Hashable {
            var origin: Int32
            var scope: ChangeScope
        }

        private var ranges: [Key: (from: UInt64, to: UInt64)] = [:]
        private var last: [Key: UInt64] = [:]
        private let origins: [BundleOriginInfo]

        /// A validator for a bundle with these (already checked) tables.
        init(origins: [BundleOriginInfo], ranges: [KnowledgeRange], originIndex: [BundleOriginInfo: Int]) {
            self.origins = origins
            for range in ranges {
                if let index = originIndex[BundleOriginInfo(id: range.origin, account: range.account)] {
                    self.ranges[Key(origin: Int32(index), scope: range.scope)] = (range.from, range.to)
                }
            }
        }

        /// Checks change number `number` (1-based, stream order).
        mutating func check(origin: Int32, seq: UInt64, entity: EntityKind, field: FieldCode, number: UInt64) throws {
            guard field.entity == entity else {
                throw ReaderSyncError.invalidBundle("change \(number): field '\(field.name)' is not allowed for \(entity)")
            }
            let key = Key(origin: origin, scope: entity.scope)
            let name = "\(origins[Int(origin)].id) (\(entity.scope))"
            guard let range = ranges[key] else {
                throw ReaderSyncError.invalidBundle("change \(number): the bundle has no range for origin \(name)")
            }
            guard seq > range.from, seq <= range.to else {
                throw ReaderSyncError.invalidBundle(
                    "change \(number): seq \(seq) of origin \(name) is outside the bundle's range (\(range.from), \(range.to)]")
            }
            if let previous = last[key], seq <= previous {
                throw ReaderSyncError.invalidBundle(
                    "change \(number): seq \(seq) of origin \(name) does not follow the previous one (\(previous))")
            }
            last[key] = seq
        }
    }

    // MARK: Encoding (format 2)

    /// Builds one block's columns, one change at a time (format 2). See the spec (§5) for the column layout.
    struct BlockEncoder {
        private(set) var count = 0
        private var originColumn = ByteWriter()
        private var seqColumn = ByteWriter()
        /// The hlc column's entries before they are split into byte planes: `zigzag(Δmillis) << 1 | hasCounter`.
        private var hlcEntries: [UInt64] = []
        private var hlcMaximum: UInt64 = 0
        private var counterColumn = ByteWriter()
        private var entityColumn = ByteWriter()
        private var keyColumn = ByteWriter()
        private var keyTextColumn = ByteWriter()
        private var fieldColumn = ByteWriter()
        private var tagColumn = ByteWriter()
        private var valueColumn = ByteWriter()
        private var lastSeq: [Int: UInt64] = [:]
        private var baseMillis: UInt64 = 0
        private var lastMillis: UInt64 = 0
        private var lastInt: Int64 = 0

        /// The number of bytes each hlc entry takes in the planes: the fewest that hold the largest (at least 1).
        private var hlcWidth: Int { max(1, (64 - hlcMaximum.leadingZeroBitCount + 7) / 8) }

        /// The size of the block body so far.
        var bodyLength: Int {
            guard count > 0 else { return 0 }
            let hlcLength = BundleFormat.varintLength(baseMillis) + 1 + hlcWidth * count + counterColumn.bytes.count
            return originColumn.bytes.count + seqColumn.bytes.count + hlcLength + entityColumn.bytes.count
                + keyColumn.bytes.count + keyTextColumn.bytes.count + fieldColumn.bytes.count + tagColumn.bytes.count
                + valueColumn.bytes.count
        }

        /// Adds a change whose origin has index `originIndex` and whose key is entry `keyID` of the bundle's
        /// key table, which holds `tableSize` keys (`isNewKey`: the key was just added as its last entry, and is
        /// written here for the first time). No validation.
        mutating func append(_ change: Change, field: FieldCode, originIndex: Int, keyID: Int32, isNewKey: Bool,
                             tableSize: Int) {
            let millis = change.hlc.millis
            let counter = change.hlc.counter
            if count == 0 {
                baseMillis = millis
                lastMillis = millis
            }
            count += 1
            originColumn.varint(UInt64(originIndex))
            let previousSeq = lastSeq[originIndex] ?? 0
            seqColumn.signed(Int64(bitPattern: change.seq &- previousSeq))
            lastSeq[originIndex] = change.seq
            let entry = BundleFormat.zigzag(Int64(bitPattern: millis &- lastMillis)) << 1 | (counter == 0 ? 0 : 1)
            hlcEntries.append(entry)
            hlcMaximum = max(hlcMaximum, entry)
            if counter != 0 { counterColumn.varint(UInt64(counter)) }
            lastMillis = millis
            entityColumn.u8(change.entity.rawValue)
            if isNewKey {
                keyColumn.varint(0)
                keyTextColumn.string(change.key)
            } else {
                keyColumn.varint(UInt64(tableSize) - UInt64(keyID))
            }
            fieldColumn.u8(field.rawValue)
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
                if let (m, e) = BundleFormat.decimal(d), BundleFormat.varintLength(BundleFormat.zigzag(m)) + 1 < 8 {
                    tagColumn.u8(ValueTag.decimal.rawValue)
                    valueColumn.signed(m)
                    valueColumn.u8(e)
                } else {
                    tagColumn.u8(ValueTag.double.rawValue)
                    valueColumn.u64(d.bitPattern)
                }
            case .string(let s):
                tagColumn.u8(ValueTag.string.rawValue)
                valueColumn.string(s)
            }
        }

        /// The framed block (`count`, body length, body) and a fresh encoder state.
        mutating func take() -> [UInt8] {
            var w = ByteWriter()
            w.varint(UInt64(count))
            w.varint(UInt64(bodyLength))
            w.bytes.reserveCapacity(w.bytes.count + bodyLength)
            w.raw(originColumn.bytes)
            w.raw(seqColumn.bytes)
            // The hlc column: base millis, plane width, the planes (byte j of every entry, j = 0 first), counters.
            w.varint(baseMillis)
            let width = hlcWidth
            w.u8(UInt8(width))
            for plane in 0..<width {
                let shift = UInt64(8 * plane)
                for entry in hlcEntries { w.u8(UInt8(truncatingIfNeeded: entry >> shift)) }
            }
            w.raw(counterColumn.bytes)
            for column in [entityColumn, keyColumn, keyTextColumn, fieldColumn, tagColumn, valueColumn] {
                w.raw(column.bytes)
            }
            self = BlockEncoder()
            return w.bytes
        }
    }

    /// Powers of ten that are exact doubles.
    static let powersOfTen: [Double] = (0...22).map { e in (0..<e).reduce(1.0) { acc, _ in acc * 10 } }

    /// `d` as `m / 10^e` (|m| ≤ 2^53, e ≤ 15) when that division gives back exactly `d`'s bits, else nil.
    static func decimal(_ d: Double) -> (Int64, UInt8)? {
        guard d.isFinite, !(d == 0 && d.sign == .minus) else { return nil }
        for e in 0...15 {
            let scaled = (d * powersOfTen[e]).rounded()
            guard abs(scaled) <= 9_007_199_254_740_992 else { return nil }
            let m = Int64(scaled)
            if (Double(m) / powersOfTen[e]).bitPattern == d.bitPattern { return (m, UInt8(e)) }
        }
        return nil
    }

    /// Decodes one hlc entry (`zigzag(Δmillis) << 1 | hasCounter`, then the counter from `r` when flagged)
    /// into a packed timestamp, advancing `lastMillis`.
    private static func hlc(_ entry: UInt64, after lastMillis: inout Int64, _ r: inout ByteReader,
                            number: UInt64) throws -> UInt64 {
        let delta = unzigzag(entry >> 1)
        let (millis, overflow) = lastMillis.addingReportingOverflow(delta)
        guard !overflow, millis >= 0, millis < 1 << 48 else {
            throw ReaderSyncError.invalidBundle("change \(number): hlc milliseconds out of range")
        }
        var counter: UInt64 = 0
        if entry & 1 == 1 {
            counter = try r.varint("the hlc counter of change \(number)")
            guard counter >= 1, counter <= UInt64(UInt16.max) else {
                throw ReaderSyncError.invalidBundle("change \(number): hlc counter \(counter) out of range (1…65535)")
            }
        }
        lastMillis = millis
        return UInt64(millis) << 16 | counter
    }

    // MARK: Decoding

    /// Decodes one block body into columns, checking every tag, index, length and UTF-8 string, and that the
    /// columns end exactly at the end of the body. Keys go into `keys` (the bundle's table).
    static func decodeBlock(_ body: [UInt8], count: Int, version: UInt16, origins: [BundleOriginInfo],
                            keys: inout BundleKeyTable, blockNumber: Int, firstNumber: UInt64) throws -> DecodedBlock {
        var r = ByteReader(body, context: "bundle payload is corrupt: block \(blockNumber)")
        func number(_ i: Int) -> UInt64 { firstNumber + UInt64(i) }

        var originIndices = [Int32](repeating: 0, count: count)
        for i in 0..<count {
            let index = try r.varint("the origin of change \(number(i))")
            guard index < UInt64(origins.count) else {
                throw ReaderSyncError.invalidBundle(
                    "change \(number(i)): origin index \(index) is not in the origin table (\(origins.count) origins)")
            }
            originIndices[i] = Int32(index)
        }
        var seqs = [UInt64](repeating: 0, count: count)
        var lastSeq: [Int32: UInt64] = [:]
        for i in 0..<count {
            let delta = try r.signed("the seq of change \(number(i))")
            let seq = (lastSeq[originIndices[i]] ?? 0) &+ UInt64(bitPattern: delta)
            lastSeq[originIndices[i]] = seq
            seqs[i] = seq
        }
        var hlcs = [UInt64](repeating: 0, count: count)
        if version >= 2 {
            // Base millis, plane width, `width` planes of `count` bytes (byte j of every entry), then counters.
            let base = try r.varint("the hlc base of block \(blockNumber)")
            guard base < 1 << 48 else {
                throw ReaderSyncError.invalidBundle("bundle payload is corrupt: block \(blockNumber): hlc base \(base) is out of range")
            }
            let width = Int(try r.u8("the hlc width of block \(blockNumber)"))
            guard (1...8).contains(width) else {
                throw ReaderSyncError.invalidBundle("bundle payload is corrupt: block \(blockNumber): hlc width \(width) is not 1…8")
            }
            let planes = try r.raw(width * count, "the hlc planes of block \(blockNumber)")
            let start = planes.startIndex
            var lastMillis = Int64(base)
            for i in 0..<count {
                var entry: UInt64 = 0
                for plane in 0..<width { entry |= UInt64(planes[start + plane * count + i]) << UInt64(8 * plane) }
                hlcs[i] = try hlc(entry, after: &lastMillis, &r, number: number(i))
            }
        } else {
            var lastMillis: Int64 = 0
            for i in 0..<count {
                let entry = try r.varint("the hlc of change \(number(i))")
                hlcs[i] = try hlc(entry, after: &lastMillis, &r, number: number(i))
            }
        }
        var entities = [EntityKind](repeating: .article, count: count)
        for i in 0..<count {
            let tag = try r.u8("the entity of change \(number(i))")
            guard let entity = EntityKind(rawValue: tag) else {
                throw ReaderSyncError.invalidBundle("change \(number(i)): unknown entity kind \(tag)")
            }
            entities[i] = entity
        }
        var keyColumn = [Int32](repeating: 0, count: count)
        var fields = [FieldCode](repeating: .content, count: count)
        if version >= 2 {
            // Key references: 0 introduces the next key of the table (its text follows in the key-text column),
            // r ≥ 1 names the key added r-th most recently.
            var size = keys.count
            var introducedBy: [Int] = []
            for i in 0..<count {
                let reference = try r.varint("the key of change \(number(i))")
                if reference == 0 {
                    guard size < maxKeyTableEntries else {
                        throw ReaderSyncError.invalidBundle("change \(number(i)): the bundle's key table is full (\(maxKeyTableEntries) keys)")
                    }
                    keyColumn[i] = Int32(size)
                    size += 1
                    introducedBy.append(i)
                } else {
                    guard reference <= UInt64(size) else {
                        throw ReaderSyncError.invalidBundle(
                            "change \(number(i)): key reference \(reference) is past the bundle's key table (\(size) entries)")
                    }
                    keyColumn[i] = Int32(UInt64(size) - reference)
                }
            }
            for i in introducedBy {
                let text = try r.string(limit: maxKeyBytes, "the key of change \(number(i))")
                guard keys.totalBytes + text.utf8.count <= maxKeyTableBytes else {
                    throw ReaderSyncError.invalidBundle("change \(number(i)): the bundle's keys pass \(maxKeyTableBytes) bytes")
                }
                let (id, isNew) = keys.intern(text)
                guard isNew else {
                    throw ReaderSyncError.invalidBundle(
                        "change \(number(i)): key '\(Keys.printable(text, limit: 60))' is already in the bundle's key table (entry \(id))")
                }
            }
            for i in 0..<count {
                let code = try r.u8("the field of change \(number(i))")
                guard let field = FieldCode(rawValue: code) else {
                    throw ReaderSyncError.invalidBundle("change \(number(i)): unknown field code \(code)")
                }
                fields[i] = field
            }
        } else {
            // Format 1: per-block string tables for keys and fields.
            var blockKeys: [Int32] = []
            for i in 0..<count {
                let id = try r.varint("the key of change \(number(i))")
                if id < UInt64(blockKeys.count) {
                    keyColumn[i] = blockKeys[Int(id)]
                } else if id == UInt64(blockKeys.count) {
                    let text = try r.string(limit: maxStringBytes, "the key of change \(number(i))")
                    let interned = keys.intern(text).id
                    // The merged table is bounded like a format-2 one, so memory stays bounded.
                    guard keys.count <= maxKeyTableEntries, keys.totalBytes <= maxKeyTableBytes else {
                        throw ReaderSyncError.invalidBundle(
                            "change \(number(i)): the bundle holds more than \(maxKeyTableEntries) keys or \(maxKeyTableBytes) bytes of keys")
                    }
                    blockKeys.append(interned)
                    keyColumn[i] = interned
                } else {
                    throw ReaderSyncError.invalidBundle(
                        "change \(number(i)): key reference \(id) is past the block's key table (\(blockKeys.count) entries)")
                }
            }
            var blockFields: [String] = []
            for i in 0..<count {
                let id = try r.varint("the field of change \(number(i))")
                let name: String
                if id < UInt64(blockFields.count) {
                    name = blockFields[Int(id)]
                } else if id == UInt64(blockFields.count) {
                    name = try r.string(limit: maxStringBytes, "the field of change \(number(i))")
                    blockFields.append(name)
                } else {
                    throw ReaderSyncError.invalidBundle(
                        "change \(number(i)): field reference \(id) is past the block's field table (\(blockFields.count) entries)")
                }
                guard let field = FieldCode(name: name, entity: entities[i]) else {
                    throw ReaderSyncError.invalidBundle("change \(number(i)): field '\(Keys.printable(name))' is not allowed for \(entities[i])")
                }
                fields[i] = field
            }
        }
        var tags = [ValueTag](repeating: .null, count: count)
        for i in 0..<count {
            let raw = try r.u8("the value type of change \(number(i))")
            guard let tag = ValueTag(rawValue: raw), version >= 2 || tag != .decimal else {
                throw ReaderSyncError.invalidBundle("change \(number(i)): unknown value type \(raw)")
            }
            tags[i] = tag
        }
        var values = [ChangeValue](repeating: .null, count: count)
        var lastInt: Int64 = 0
        for i in 0..<count {
            switch tags[i] {
            case .null: values[i] = .null
            case .false: values[i] = .bool(false)
            case .true: values[i] = .bool(true)
            case .int, .intNearTime:
                let delta = try r.signed("the value of change \(number(i))")
                let base = tags[i] == .int ? lastInt : Int64(hlcs[i] >> 16)
                let int = base &+ delta
                lastInt = int
                values[i] = .int(int)
            case .double:
                values[i] = .double(Double(bitPattern: try r.u64("the value of change \(number(i))")))
            case .decimal:
                let m = try r.signed("the value of change \(number(i))")
                let e = try r.u8("the exponent of change \(number(i))")
                guard m.magnitude <= 9_007_199_254_740_992, e <= 15 else {
                    throw ReaderSyncError.invalidBundle("change \(number(i)): decimal \(m)e-\(e) is out of range")
                }
                values[i] = .double(Double(m) / powersOfTen[Int(e)])
            case .string:
                values[i] = .string(try r.string(limit: maxStringBytes, "the value of change \(number(i))"))
            }
        }
        guard r.remaining == 0 else {
            throw ReaderSyncError.invalidBundle(
                "bundle payload is corrupt: block \(blockNumber): \(r.remaining) unexpected bytes after the last column")
        }
        return DecodedBlock(count: count, firstNumber: firstNumber, origin: originIndices, seq: seqs, hlc: hlcs,
                            entity: entities, key: keyColumn, field: fields, value: values)
    }
}
