public import Foundation

/// The stable identity of one replica (one device's copy of the data).
///
/// Two replicas created with the same account name are two devices of one user;
/// each still has its own `ReplicaID`.
public struct ReplicaID: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    /// The 16 bytes of the identifier.
    public let uuid: UUID

    /// Wraps an existing UUID.
    public init(_ uuid: UUID) { self.uuid = uuid }

    /// Creates a random replica id.
    public static func random() -> ReplicaID { ReplicaID(UUID()) }

    /// Parses the textual form (a UUID string), or returns nil.
    public init?(string: String) {
        guard let uuid = UUID(uuidString: string) else { return nil }
        self.uuid = uuid
    }

    /// The lowercase UUID string.
    public var description: String { uuid.uuidString.lowercased() }

    /// The 16 raw bytes, in network order.
    public var bytes: [UInt8] {
        withUnsafeBytes(of: uuid.uuid) { Array($0) }
    }

    /// The raw bytes as two big-endian halves: comparing `(high, low)` compares the bytes.
    var halves: (high: UInt64, low: UInt64) {
        withUnsafeBytes(of: uuid.uuid) { raw in
            var high: UInt64 = 0
            var low: UInt64 = 0
            for i in 0..<8 { high = high << 8 | UInt64(raw[i]) }
            for i in 8..<16 { low = low << 8 | UInt64(raw[i]) }
            return (high, low)
        }
    }

    /// Creates an id from exactly 16 raw bytes, or returns nil.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 16 else { return nil }
        let b = Array(bytes)
        self.uuid = UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
                                b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
    }

    /// Replica ids order by their bytes; the order breaks ties between concurrent writes.
    public static func < (lhs: ReplicaID, rhs: ReplicaID) -> Bool {
        let a = lhs.halves, b = rhs.halves
        return a.high != b.high ? a.high < b.high : a.low < b.low
    }

    /// Decodes the lowercase UUID string form.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let id = ReplicaID(string: text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a replica id: \(text)")
        }
        self = id
    }

    /// Encodes the lowercase UUID string form.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// An account: identified by its user name. A replica belongs to exactly one account.
package struct Account: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The user name.
    package let name: String

    /// Creates an account value; see ``validate(_:)`` for the accepted names.
    package init(name: String) { self.name = name }

    /// The user name.
    package var description: String { name }

    /// The longest account name, in characters (all ASCII, so also in bytes).
    package static let maxLength = 64

    /// Whether `name` is an acceptable account name: 1…64 ASCII letters, digits, `.`, `_`, `-` or `@`.
    ///
    /// Names are ASCII so that two spellings can never look alike and compare differently
    /// (`Schemas/merge-rules.md`, "Keys").
    package static func isValid(_ name: String) -> Bool {
        let utf8 = name.utf8
        guard !utf8.isEmpty, utf8.count <= maxLength else { return false }
        return utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x2E || byte == 0x5F || byte == 0x2D || byte == 0x40
        }
    }

    /// Checks that `name` is an acceptable account name: 1…64 ASCII letters, digits, `.`, `_`, `-` or `@`.
    /// - Throws: ``ReaderSyncError`` naming the problem.
    package static func validate(_ name: String) throws {
        guard !name.isEmpty, name.utf8.count <= maxLength else {
            throw ReaderSyncError.invalidInput("account name must be 1 to \(maxLength) characters, got \(name.utf8.count) bytes")
        }
        guard isValid(name) else {
            throw ReaderSyncError.invalidInput(
                "account name '\(Keys.printable(name))' may contain only ASCII letters, digits, '.', '_', '-' and '@'")
        }
    }
}

/// A string compared, hashed and ordered by its UTF-8 bytes.
///
/// Swift's `String` `==` and hashing follow Unicode canonical equivalence ("é" equals "e" + U+0301); keys of
/// the merge path must not (`Schemas/merge-rules.md`, "Keys"), so sets and dictionaries of keys use this.
struct ByteString: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The UTF-8 bytes.
    let utf8: [UInt8]

    init(_ string: String) { utf8 = Array(string.utf8) }
    init(utf8: [UInt8]) { self.utf8 = utf8 }

    /// The string (the bytes are always valid UTF-8: they come from a `String`).
    var string: String { String(decoding: utf8, as: UTF8.self) }
    var description: String { string }

    static func < (lhs: ByteString, rhs: ByteString) -> Bool { lhs.utf8.lexicographicallyPrecedes(rhs.utf8) }
}

/// The rules for article and comment ids (and the other keys changes name): see `Schemas/merge-rules.md`.
package enum Keys {
    /// The longest id, in UTF-8 bytes.
    package static let maxIDBytes = 512

    /// Why `id` is not an acceptable article or comment id, or nil when it is: 1…512 bytes of UTF-8, not only
    /// white space, and no control characters (U+0000–U+001F, U+007F–U+009F).
    package static func problem(withID id: String) -> String? {
        let utf8 = id.utf8
        if utf8.isEmpty { return "is empty" }
        if utf8.count > maxIDBytes { return "is \(utf8.count) bytes long (limit \(maxIDBytes))" }
        if let bad = id.unicodeScalars.first(where: isControl) {
            return "contains the control character U+\(hex4(bad.value))"
        }
        if id.unicodeScalars.allSatisfy({ $0.properties.isWhitespace }) { return "is only white space" }
        return nil
    }

    /// Whether `scalar` is a C0 or C1 control character or DEL.
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (scalar.value >= 0x7F && scalar.value <= 0x9F)
    }

    /// Why a text value is not acceptable (it holds U+0000), or nil.
    static func problem(withText text: String) -> String? {
        text.utf8.contains(0) ? "contains the character U+0000" : nil
    }

    /// `s` with control characters shown as `\u{…}`, for messages.
    static func printable(_ s: String, limit: Int = 80) -> String {
        var out = ""
        for scalar in s.unicodeScalars {
            if out.unicodeScalars.count >= limit { out += "…"; break }
            if isControl(scalar) { out += "\\u{\(hex4(scalar.value))}" } else { out.unicodeScalars.append(scalar) }
        }
        return out
    }

    static func hex4(_ value: UInt32) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    /// The account a comment id is bound to: the part before the first `:` when that part is a valid
    /// account name (`alice:3f2a…` is bound to `alice`). Ids minted by ReaderSync are always bound;
    /// a creation of a bound id counts only when it comes from a replica of that account.
    package static func boundAccount(ofCommentID id: String) -> String? {
        guard let colon = id.utf8.firstIndex(of: 0x3A) else { return nil }
        let prefix = String(decoding: id.utf8[id.utf8.startIndex..<colon], as: UTF8.self)
        return Account.isValid(prefix) ? prefix : nil
    }
}
