public import Foundation

/// What a replica holds: for each origin (a replica id and its account) and scope, the highest sequence number
/// up to which it holds (or has merged away) all of that origin's changes in that scope, and the origin's
/// incarnation at that sequence number.
///
/// A sync sends exactly the changes the other side's knowledge lacks, including changes relayed
/// from third replicas. The incarnation lets a replica notice that someone holds a different history of its
/// own origin (it was restored from a backup, or copied): see `Schemas/merge-rules.md`, "Identity".
public struct Knowledge: Sendable, Equatable, Hashable {
    /// One knowledge entry's key: an origin and a scope.
    public struct Key: Hashable, Sendable, Comparable {
        /// The origin replica.
        public var origin: ReplicaID
        /// The origin's account: an origin is the pair (replica id, account).
        public var account: String
        /// The scope within that origin.
        public var scope: ChangeScope

        /// Creates a key.
        public init(origin: ReplicaID, account: String, scope: ChangeScope) {
            self.origin = origin
            self.account = account
            self.scope = scope
        }

        /// Keys compare accounts byte for byte.
        public static func == (lhs: Key, rhs: Key) -> Bool {
            lhs.origin == rhs.origin && lhs.scope == rhs.scope && lhs.account.utf8.elementsEqual(rhs.account.utf8)
        }

        /// Hashes the account's bytes.
        public func hash(into hasher: inout Hasher) {
            hasher.combine(origin)
            hasher.combine(scope)
            for byte in account.utf8 { hasher.combine(byte) }
        }

        /// Keys order by origin, then account bytes, then scope.
        public static func < (lhs: Key, rhs: Key) -> Bool {
            if lhs.origin != rhs.origin { return lhs.origin < rhs.origin }
            if !lhs.account.utf8.elementsEqual(rhs.account.utf8) {
                return lhs.account.utf8.lexicographicallyPrecedes(rhs.account.utf8)
            }
            return lhs.scope.rawValue < rhs.scope.rawValue
        }
    }

    /// What is held of one origin and scope.
    public struct Entry: Hashable, Sendable {
        /// All changes up to this sequence number are held (or were merged away).
        public var seq: UInt64
        /// The origin's incarnation at `seq`, or 0 when unknown.
        public var incarnation: UInt64

        /// Creates an entry.
        public init(seq: UInt64, incarnation: UInt64 = 0) {
            self.seq = seq
            self.incarnation = incarnation
        }
    }

    /// The entries; absent keys mean 0 (nothing held).
    public private(set) var entries: [Key: Entry]

    /// Knowledge of nothing.
    public init() { entries = [:] }

    /// Knowledge with the given entries (zero entries are dropped).
    public init(entries: [Key: Entry]) {
        self.entries = entries.filter { $0.value.seq > 0 }
    }

    /// The highest sequence held of `origin` (of `account`) in `scope`.
    public func seq(origin: ReplicaID, account: String, scope: ChangeScope) -> UInt64 {
        entries[Key(origin: origin, account: account, scope: scope)]?.seq ?? 0
    }

    /// The entry for an origin and scope, if any.
    public func entry(origin: ReplicaID, account: String, scope: ChangeScope) -> Entry? {
        entries[Key(origin: origin, account: account, scope: scope)]
    }

    /// Raises the entry for an origin and scope to at least `seq` (taking `incarnation` when it moves).
    public mutating func advance(origin: ReplicaID, account: String, scope: ChangeScope, to seq: UInt64,
                                 incarnation: UInt64 = 0) {
        let key = Key(origin: origin, account: account, scope: scope)
        if seq > (entries[key]?.seq ?? 0) { entries[key] = Entry(seq: seq, incarnation: incarnation) }
    }

    /// Whether this knowledge holds everything `other` holds.
    public func includes(_ other: Knowledge) -> Bool {
        other.entries.allSatisfy { (entries[$0.key]?.seq ?? 0) >= $0.value.seq }
    }

    /// Total number of sequence numbers covered (a rough size).
    public var total: UInt64 { entries.values.reduce(0) { $0 &+ $1.seq } }

    /// The largest sequence number the store can hold (SQLite integers are signed 64-bit).
    public static let maxSeq: UInt64 = UInt64(Int64.max)
}

// MARK: - JSON form (knowledge files, the HTTP API)

extension Knowledge: Codable {
    private enum CodingKeys: String, CodingKey { case format, entries }
    private enum EntryKeys: String, CodingKey { case origin, account, scope, seq, incarnation }

    /// The value of the `format` field of knowledge JSON.
    public static let fileFormat = "readersync-knowledge/2"

    /// Decodes the knowledge JSON form (`format` and sorted `entries`), naming the entry at fault.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let format = try container.decode(String.self, forKey: .format)
        guard format == Self.fileFormat else {
            let hint = format == "readersync-knowledge/1" ? " (written by an older ReaderSync: write it again with this version)" : ""
            throw DecodingError.dataCorruptedError(forKey: .format, in: container,
                                                   debugDescription: "expected format \(Self.fileFormat), found \(format)\(hint)")
        }
        var list = try container.nestedUnkeyedContainer(forKey: .entries)
        var result: [Key: Entry] = [:]
        while !list.isAtEnd {
            let index = list.currentIndex
            let entry = try list.nestedContainer(keyedBy: EntryKeys.self)
            func bad(_ key: EntryKeys, _ message: String) -> DecodingError {
                DecodingError.dataCorruptedError(forKey: key, in: entry, debugDescription: message)
            }
            let origin = try entry.decode(ReplicaID.self, forKey: .origin)
            let account = try entry.decode(String.self, forKey: .account)
            guard Account.isValid(account) else { throw bad(.account, "'\(Keys.printable(account))' is not an account name") }
            let scopeName = try entry.decode(String.self, forKey: .scope)
            guard let scope = ChangeScope.allCases.first(where: { $0.description == scopeName }) else {
                throw bad(.scope, "unknown scope '\(scopeName)' (shared or private)")
            }
            let seq: UInt64
            if let value = try? entry.decode(UInt64.self, forKey: .seq) {
                seq = value
            } else if (try? entry.decodeNil(forKey: .seq)) == true || !entry.contains(.seq) {
                throw bad(.seq, "missing: an integer from 0 to \(Self.maxSeq) is required")
            } else {
                throw bad(.seq, "not an integer from 0 to \(Self.maxSeq)")
            }
            guard seq <= Self.maxSeq else { throw bad(.seq, "\(seq) is out of range (at most \(Self.maxSeq))") }
            var incarnation: UInt64 = 0
            if let text = try entry.decodeIfPresent(String.self, forKey: .incarnation) {
                guard let value = UInt64(text, radix: 16), text.utf8.count <= 16 else {
                    throw bad(.incarnation, "'\(Keys.printable(text))' is not 1 to 16 hexadecimal digits")
                }
                incarnation = value
            }
            let key = Key(origin: origin, account: account, scope: scope)
            guard result[key] == nil else {
                throw DecodingError.dataCorruptedError(in: list, debugDescription:
                    "entries[\(index)]: origin \(origin) (\(account)) scope \(scopeName) is listed twice")
            }
            result[key] = Entry(seq: seq, incarnation: incarnation)
        }
        self.init(entries: result)
    }

    /// Encodes the knowledge JSON form, entries sorted by origin, account and scope; the incarnation as 16
    /// lowercase hexadecimal digits.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Self.fileFormat, forKey: .format)
        var list = container.nestedUnkeyedContainer(forKey: .entries)
        for (key, value) in entries.sorted(by: { $0.key < $1.key }) {
            var entry = list.nestedContainer(keyedBy: EntryKeys.self)
            try entry.encode(key.origin, forKey: .origin)
            try entry.encode(key.account, forKey: .account)
            try entry.encode(key.scope.description, forKey: .scope)
            try entry.encode(value.seq, forKey: .seq)
            try entry.encode(Self.hex16(value.incarnation), forKey: .incarnation)
        }
    }

    /// 16 lowercase hexadecimal digits.
    static func hex16(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// Reads knowledge JSON.
    /// - Throws: ``ReaderSyncError/invalidInput(_:)`` naming what is wrong.
    public static func decode(json data: Data) throws -> Knowledge {
        do {
            return try JSONDecoder().decode(Knowledge.self, from: data)
        } catch let error as DecodingError {
            throw ReaderSyncError.invalidInput("not valid knowledge: \(describe(error))")
        } catch {
            throw ReaderSyncError.invalidInput("not valid knowledge: the text is not JSON")
        }
    }

    /// A digest of what this knowledge says `account` holds: SHA-256, as 64 lowercase hexadecimal digits, of the
    /// text `readersync-knowledge-digest/1\n`, the account name and `\n`, then one line per entry with a seq above
    /// 0, sorted by origin bytes, account bytes and scope: `ORIGIN ACCOUNT SCOPE SEQ INCARNATION\n` (origin as a
    /// lowercase UUID, scope `shared`/`private`, seq in decimal, incarnation as 16 hexadecimal digits).
    ///
    /// Two sides whose digests are equal hold the same changes: the one-request no-op sync
    /// (`POST /v1/sync/check`, `Schemas/openapi.yaml`) compares them.
    public func digest(account: String) -> String {
        var text = Array("readersync-knowledge-digest/1\n".utf8) + Array(account.utf8) + [0x0A]
        for (key, entry) in entries.sorted(by: { $0.key < $1.key }) where entry.seq > 0 {
            text += Array("\(key.origin) ".utf8) + Array(key.account.utf8)
            text += Array(" \(key.scope.description) \(entry.seq) \(Self.hex16(entry.incarnation))\n".utf8)
        }
        return SHA256.hex(text)
    }

    /// The canonical JSON of this knowledge (sorted keys and entries).
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return try encoder.encode(self)
    }
}

/// A range of one origin's changes in one scope that a bundle covers: sequence numbers `(from, to]`.
///
/// A receiver that holds fewer than `from` of them cannot apply the bundle (there would be a gap).
public struct KnowledgeRange: Sendable, Hashable {
    /// The origin replica.
    public var origin: ReplicaID
    /// The origin's account.
    public var account: String
    /// The scope.
    public var scope: ChangeScope
    /// The sender assumed the receiver holds up to here.
    public var from: UInt64
    /// The bundle brings the receiver up to here.
    public var to: UInt64
    /// The origin's incarnation at `to`, or 0 when the sender does not know it.
    public var toIncarnation: UInt64

    /// Creates a range.
    public init(origin: ReplicaID, account: String, scope: ChangeScope, from: UInt64, to: UInt64,
                toIncarnation: UInt64 = 0) {
        self.origin = origin
        self.account = account
        self.scope = scope
        self.from = from
        self.to = to
        self.toIncarnation = toIncarnation
    }

    /// The knowledge key of the range.
    public var key: Knowledge.Key { Knowledge.Key(origin: origin, account: account, scope: scope) }
}

/// Describes a `DecodingError` in one line naming the path to the bad field.
func describe(_ error: DecodingError) -> String {
    func path(_ codingPath: [any CodingKey]) -> String {
        let p = codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        return p.isEmpty ? "top level" : String(p.drop(while: { $0 == "." }))
    }
    switch error {
    case .typeMismatch(let type, let ctx):
        return "\(path(ctx.codingPath)): expected \(type)"
    case .valueNotFound(let type, let ctx):
        return "\(path(ctx.codingPath)): missing \(type) value"
    case .keyNotFound(let key, let ctx):
        return "\(path(ctx.codingPath + [key])): missing field"
    case .dataCorrupted(let ctx):
        let underlying = (ctx.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
        return "\(path(ctx.codingPath)): \(underlying ?? ctx.debugDescription)"
    @unknown default:
        return "\(error)"
    }
}

/// A knowledge file: what a (far) replica holds, written by `readersync knowledge` so that another replica can
/// export exactly what it lacks.
public struct KnowledgeFile: Codable, Sendable, Equatable {
    /// The replica the knowledge describes.
    public var replica: ReplicaID
    /// Its account: read state is exported only to replicas of the same account.
    public var account: String
    /// What it holds.
    public var knowledge: Knowledge

    /// Creates a knowledge file value.
    public init(replica: ReplicaID, account: String, knowledge: Knowledge) {
        self.replica = replica
        self.account = account
        self.knowledge = knowledge
    }

    /// The most bytes a knowledge file may have.
    public static let maxFileBytes = 64 << 20

    /// Reads a knowledge file.
    /// - Throws: ``ReaderSyncError/invalidInput(_:)`` naming what is wrong.
    public static func read(from url: URL) throws -> KnowledgeFile {
        let data: Data
        do {
            let size = (try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
            guard size <= maxFileBytes else {
                throw ReaderSyncError.invalidInput("\(url.path) is \(size) bytes; a knowledge file is at most \(maxFileBytes)")
            }
            data = try Data(contentsOf: url)
        } catch let error as ReaderSyncError {
            throw error
        } catch {
            throw ReaderSyncError.invalidInput("cannot read knowledge file \(url.path): \(error.localizedDescription)")
        }
        do {
            let file = try JSONDecoder().decode(KnowledgeFile.self, from: data)
            try Account.validate(file.account)
            return file
        } catch let error as DecodingError {
            throw ReaderSyncError.invalidInput("\(url.path) is not a knowledge file: \(describe(error))")
        } catch let error as ReaderSyncError {
            throw ReaderSyncError.invalidInput("\(url.path) is not a knowledge file: \(error.message)")
        } catch {
            throw ReaderSyncError.invalidInput("\(url.path) is not a knowledge file: the text is not JSON")
        }
    }

    /// The JSON bytes of the file (canonical: sorted keys).
    public func jsonData() throws -> Data {
        var data = try CanonicalJSON.encoder(pretty: true).encode(self)
        data.append(0x0A)
        return data
    }
}
