public import Foundation

/// What a replica holds: for each origin replica and scope, the highest sequence number
/// up to which it holds (or has merged away) all of that origin's changes in that scope.
///
/// A sync sends exactly the changes the other side's knowledge lacks, including changes relayed
/// from third replicas.
public struct Knowledge: Sendable, Equatable, Hashable {
    /// One knowledge entry's key.
    public struct Key: Hashable, Sendable, Comparable {
        /// The origin replica.
        public var origin: ReplicaID
        /// The scope within that origin.
        public var scope: ChangeScope

        /// Creates a key.
        public init(origin: ReplicaID, scope: ChangeScope) {
            self.origin = origin
            self.scope = scope
        }

        /// Keys order by origin, then scope.
        public static func < (lhs: Key, rhs: Key) -> Bool {
            (lhs.origin, lhs.scope.rawValue) < (rhs.origin, rhs.scope.rawValue)
        }
    }

    /// The entries; absent keys mean 0 (nothing held).
    public private(set) var entries: [Key: UInt64]

    /// Knowledge of nothing.
    public init() { entries = [:] }

    /// Knowledge with the given entries (zero entries are dropped).
    public init(entries: [Key: UInt64]) {
        self.entries = entries.filter { $0.value > 0 }
    }

    /// The highest sequence held for `origin` in `scope`.
    public func seq(origin: ReplicaID, scope: ChangeScope) -> UInt64 {
        entries[Key(origin: origin, scope: scope)] ?? 0
    }

    /// Raises the entry for `origin`/`scope` to at least `seq`.
    public mutating func advance(origin: ReplicaID, scope: ChangeScope, to seq: UInt64) {
        let key = Key(origin: origin, scope: scope)
        if seq > (entries[key] ?? 0) { entries[key] = seq }
    }

    /// Whether this knowledge holds everything `other` holds.
    public func includes(_ other: Knowledge) -> Bool {
        other.entries.allSatisfy { seq(origin: $0.key.origin, scope: $0.key.scope) >= $0.value }
    }

    /// Total number of sequence numbers covered (a rough size).
    public var total: UInt64 { entries.values.reduce(0, +) }
}

// MARK: - JSON form (knowledge files)

extension Knowledge: Codable {
    private struct Entry: Codable {
        var origin: ReplicaID
        var scope: String
        var seq: UInt64
    }

    private enum CodingKeys: String, CodingKey { case format, entries }

    /// The value of the `format` field of a knowledge file.
    public static let fileFormat = "readersync-knowledge/1"

    /// Decodes the knowledge-file JSON form (`format` and sorted `entries`).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let format = try container.decode(String.self, forKey: .format)
        guard format == Self.fileFormat else {
            throw DecodingError.dataCorruptedError(forKey: .format, in: container,
                                                   debugDescription: "expected format \(Self.fileFormat), found \(format)")
        }
        var result: [Key: UInt64] = [:]
        for entry in try container.decode([Entry].self, forKey: .entries) {
            guard let scope = ChangeScope.allCases.first(where: { $0.description == entry.scope }) else {
                throw DecodingError.dataCorruptedError(forKey: .entries, in: container,
                                                       debugDescription: "unknown scope '\(entry.scope)'")
            }
            let key = Key(origin: entry.origin, scope: scope)
            guard result[key] == nil else {
                throw DecodingError.dataCorruptedError(forKey: .entries, in: container,
                                                       debugDescription: "origin \(entry.origin) scope \(entry.scope) listed twice")
            }
            result[key] = entry.seq
        }
        self.init(entries: result)
    }

    /// Encodes the knowledge-file JSON form, entries sorted by origin and scope.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Self.fileFormat, forKey: .format)
        let list = entries.sorted { $0.key < $1.key }.map { Entry(origin: $0.key.origin, scope: $0.key.scope.description, seq: $0.value) }
        try container.encode(list, forKey: .entries)
    }

    /// Reads a knowledge file's JSON.
    /// - Throws: ``ReaderSyncError/invalidInput(_:)`` naming what is wrong.
    public static func decode(json data: Data) throws -> Knowledge {
        do {
            return try JSONDecoder().decode(Knowledge.self, from: data)
        } catch let error as DecodingError {
            throw ReaderSyncError.invalidInput("not a knowledge file: \(describe(error))")
        } catch {
            throw ReaderSyncError.invalidInput("not a knowledge file: \(error)")
        }
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
    /// The scope.
    public var scope: ChangeScope
    /// The sender assumed the receiver holds up to here.
    public var from: UInt64
    /// The bundle brings the receiver up to here.
    public var to: UInt64

    /// Creates a range.
    public init(origin: ReplicaID, scope: ChangeScope, from: UInt64, to: UInt64) {
        self.origin = origin
        self.scope = scope
        self.from = from
        self.to = to
    }
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

    /// Reads a knowledge file.
    /// - Throws: ``ReaderSyncError/invalidInput(_:)`` naming what is wrong.
    public static func read(from url: URL) throws -> KnowledgeFile {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ReaderSyncError.invalidInput("cannot read knowledge file \(url.path): \(error.localizedDescription)")
        }
        do {
            return try JSONDecoder().decode(KnowledgeFile.self, from: data)
        } catch let error as DecodingError {
            throw ReaderSyncError.invalidInput("\(url.path) is not a knowledge file: \(describe(error))")
        } catch {
            throw ReaderSyncError.invalidInput("\(url.path) is not a knowledge file: \(error)")
        }
    }

    /// Writes the file as canonical JSON.
    public func write(to url: URL) throws {
        do {
            try CanonicalJSON.encoder(pretty: true).encode(self).write(to: url, options: .atomic)
        } catch {
            throw ReaderSyncError.storage("cannot write \(url.path): \(error.localizedDescription)")
        }
    }
}
