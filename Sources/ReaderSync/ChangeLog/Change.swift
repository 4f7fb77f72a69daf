import Foundation

/// What kind of thing a change describes.
public enum EntityKind: UInt8, Sendable, Codable, CaseIterable, CustomStringConvertible {
    /// An article (shared with everyone). Key: the article id.
    case article = 1
    /// A comment (shared with everyone). Key: the comment id.
    case comment = 2
    /// A read state (private to the account of the replica that wrote it). Key: the article id.
    case readState = 3

    /// Who may receive changes of this kind.
    public var scope: ChangeScope { self == .readState ? .private : .shared }

    /// `article`, `comment` or `readState`.
    public var description: String {
        switch self {
        case .article: return "article"
        case .comment: return "comment"
        case .readState: return "readState"
        }
    }

    /// Parses the textual form.
    public init?(name: String) {
        guard let kind = Self.allCases.first(where: { $0.description == name }) else { return nil }
        self = kind
    }
}

/// Who may receive a change: everyone, or only replicas of the writer's account.
///
/// Knowledge is kept per origin replica and scope, so a replica that may not hold another
/// account's private changes never claims to hold them and never relays a gap.
public enum ChangeScope: UInt8, Sendable, Codable, CaseIterable, CustomStringConvertible {
    /// Articles and comments.
    case shared = 0
    /// Read state: only for replicas of the same account.
    case `private` = 1

    /// `shared` or `private`.
    public var description: String { self == .shared ? "shared" : "private" }
}

/// The new value a change writes to one field.
///
/// In JSON it is the plain value (`null`, `true`, `42`, `0.5`, `"text"`); ``Change`` records its type beside it.
public enum ChangeValue: Sendable, Hashable, CustomStringConvertible {
    /// No value (unread, unsaved, a progress reset).
    case null
    /// A boolean.
    case bool(Bool)
    /// A signed 64-bit integer (times are milliseconds since 1970).
    case int(Int64)
    /// A double.
    case double(Double)
    /// Text (article content is canonical JSON text).
    case string(String)

    /// The value as JSON-ish text, for logs.
    public var description: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d): return String(d)
        case .string(let s): return s.count > 60 ? "\"\(s.prefix(57))...\"" : "\"\(s)\""
        }
    }

    /// The integer, if this is one.
    public var intValue: Int64? { if case .int(let i) = self { return i } else { return nil } }
    /// The double (or integer as double), if this is one.
    public var doubleValue: Double? {
        switch self {
        case .double(let d): return d
        case .int(let i): return Double(i)
        default: return nil
        }
    }
    /// The string, if this is one.
    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    /// The boolean, if this is one.
    public var boolValue: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    /// Whether this is `.null`.
    public var isNull: Bool { if case .null = self { return true } else { return false } }
}

extension ChangeValue {
    /// The type name used in JSON: `null`, `bool`, `int`, `double` or `string`.
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "double"
        case .string: return "string"
        }
    }
}

/// The fields each entity's changes may write. The merge rule of each is in `Schemas/merge-rules.md`.
public enum ChangeField {
    /// Article: the whole published version as canonical JSON; highest (updatedAt, hlc, origin) wins.
    public static let articleContent = "content"
    /// Comment: creation record (article, parent, author) as canonical JSON; written once.
    public static let commentCreated = "created"
    /// Comment: the text; last writer wins among the author's writes.
    public static let commentBody = "body"
    /// Comment: deleted flag; once true, true forever.
    public static let commentDeleted = "deleted"
    /// Read state: read time in ms, or null for unread; last writer wins.
    public static let read = "read"
    /// Read state: progress 0…1, or null for a reset by "mark unread"; furthest since the last reset wins.
    public static let progress = "progress"
    /// Read state: saved time in ms, or null for unsaved; last writer wins.
    public static let saved = "saved"

    /// The fields allowed for each entity.
    public static func allowed(for entity: EntityKind) -> Set<String> {
        switch entity {
        case .article: return [articleContent]
        case .comment: return [commentCreated, commentBody, commentDeleted]
        case .readState: return [read, progress, saved]
        }
    }
}

/// A field as the store and format 2 of bundles number it (`Schemas/bundle-format.md`, field codes).
enum FieldCode: UInt8, Sendable, CaseIterable {
    case content = 1, created = 2, body = 3, deleted = 4, read = 5, progress = 6, saved = 7

    /// The field's name (`ChangeField`).
    var name: String {
        switch self {
        case .content: return ChangeField.articleContent
        case .created: return ChangeField.commentCreated
        case .body: return ChangeField.commentBody
        case .deleted: return ChangeField.commentDeleted
        case .read: return ChangeField.read
        case .progress: return ChangeField.progress
        case .saved: return ChangeField.saved
        }
    }

    /// The entity the field belongs to.
    var entity: EntityKind {
        switch self {
        case .content: return .article
        case .created, .body, .deleted: return .comment
        case .read, .progress, .saved: return .readState
        }
    }

    /// The code of a field name of `entity`, or nil when the entity has no such field.
    init?(name: String, entity: EntityKind) {
        guard let code = Self.allCases.first(where: { $0.entity == entity && $0.name == name }) else { return nil }
        self = code
    }
}

/// One change: a new value for one field of one entity, stamped and attributed.
///
/// Changes are the unit of the change log, of bundles and of merging. `(origin, seq)` identifies a change
/// everywhere; `hlc` and `origin` order concurrent writes.
public struct Change: Sendable, Hashable, Codable {
    /// The replica that made the change.
    public var origin: ReplicaID
    /// The account of that replica: an origin is the pair (replica id, account).
    public var account: String
    /// The origin's sequence number for this change (1, 2, 3…, without gaps per origin).
    public var seq: UInt64
    /// When it was made, on the origin's hybrid logical clock.
    public var hlc: HLCTimestamp
    /// What it describes.
    public var entity: EntityKind
    /// Which one: article id, comment id, or (read state) article id.
    public var key: String
    /// Which field it writes.
    public var field: String
    /// The new value.
    public var value: ChangeValue

    /// Creates a change.
    public init(origin: ReplicaID, account: String, seq: UInt64, hlc: HLCTimestamp, entity: EntityKind,
                key: String, field: String, value: ChangeValue) {
        self.origin = origin
        self.account = account
        self.seq = seq
        self.hlc = hlc
        self.entity = entity
        self.key = key
        self.field = field
        self.value = value
    }

    /// The scope of the change, from its entity.
    public var scope: ChangeScope { entity.scope }

    private enum CodingKeys: String, CodingKey { case origin, account, seq, hlc, time, entity, key, field, type, value }

    /// JSON: `{"origin", "account", "seq", "hlc" (packed, as a decimal string: it exceeds 2^53), "time" (ISO 8601),
    /// "entity" (name), "key", "field", "type" (value type name), "value" (plain JSON value)}`.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(origin, forKey: .origin)
        try c.encode(account, forKey: .account)
        try c.encode(seq, forKey: .seq)
        try c.encode(String(hlc.rawValue), forKey: .hlc)
        try c.encode(ISO8601.string(fromMillis: Int64(hlc.millis)), forKey: .time)
        try c.encode(entity.description, forKey: .entity)
        try c.encode(key, forKey: .key)
        try c.encode(field, forKey: .field)
        try c.encode(value.typeName, forKey: .type)
        switch value {
        case .null: try c.encodeNil(forKey: .value)
        case .bool(let b): try c.encode(b, forKey: .value)
        case .int(let i): try c.encode(i, forKey: .value)
        case .double(let d): try c.encode(d, forKey: .value)
        case .string(let s): try c.encode(s, forKey: .value)
        }
    }

    /// Decodes the JSON form written by ``encode(to:)``.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        origin = try c.decode(ReplicaID.self, forKey: .origin)
        account = try c.decode(String.self, forKey: .account)
        seq = try c.decode(UInt64.self, forKey: .seq)
        if let text = try? c.decode(String.self, forKey: .hlc) {
            guard let raw = UInt64(text) else {
                throw DecodingError.dataCorruptedError(forKey: .hlc, in: c, debugDescription: "not a timestamp: \(text)")
            }
            hlc = HLCTimestamp(rawValue: raw)
        } else {
            hlc = try c.decode(HLCTimestamp.self, forKey: .hlc)
        }
        let entityName = try c.decode(String.self, forKey: .entity)
        guard let kind = EntityKind(name: entityName) else {
            throw DecodingError.dataCorruptedError(forKey: .entity, in: c, debugDescription: "unknown entity '\(entityName)'")
        }
        entity = kind
        key = try c.decode(String.self, forKey: .key)
        field = try c.decode(String.self, forKey: .field)
        switch try c.decode(String.self, forKey: .type) {
        case "null": value = .null
        case "bool": value = .bool(try c.decode(Bool.self, forKey: .value))
        case "int": value = .int(try c.decode(Int64.self, forKey: .value))
        case "double": value = .double(try c.decode(Double.self, forKey: .value))
        case "string": value = .string(try c.decode(String.self, forKey: .value))
        case let other:
            throw DecodingError.dataCorruptedError(forKey: .type, in: c, debugDescription: "unknown value type '\(other)'")
        }
    }
}

/// A change as this replica's log holds it, with its place in the log's order.
public struct ChangeLogEntry: Sendable, Hashable, Codable {
    /// The change.
    public var change: Change
    /// Where the entry sits in the log's order (write order: hybrid timestamp, then origin, then sequence
    /// number); pass it as `after` to ``Replica/changeLog(after:limit:)-9mfrc`` to read the entries that follow.
    public var cursor: String
    /// The account of the origin replica (the same as `change.account`).
    public var originAccount: String { change.account }

    /// Creates an entry.
    public init(change: Change, cursor: String) {
        self.change = change
        self.cursor = cursor
    }
}
