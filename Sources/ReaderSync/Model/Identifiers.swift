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

    /// Creates an id from exactly 16 raw bytes, or returns nil.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 16 else { return nil }
        let b = Array(bytes)
        self.uuid = UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
                                b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
    }

    /// Replica ids order by their bytes; the order breaks ties between concurrent writes.
    public static func < (lhs: ReplicaID, rhs: ReplicaID) -> Bool {
        lhs.bytes.lexicographicallyPrecedes(rhs.bytes)
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
public struct Account: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The user name.
    public let name: String

    /// Creates an account value; see ``validate(_:)`` for the accepted names.
    public init(name: String) { self.name = name }

    /// The user name.
    public var description: String { name }

    /// Checks that `name` is an acceptable account name: 1…64 characters of letters,
    /// digits, `.`, `_`, `-` or `@`.
    /// - Throws: ``ReaderSyncError`` naming the problem.
    public static func validate(_ name: String) throws {
        guard !name.isEmpty, name.count <= 64 else {
            throw ReaderSyncError.invalidInput("account name must be 1 to 64 characters, got \(name.count)")
        }
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "._-@"))
        guard name.unicodeScalars.allSatisfy({ allowed.contains($0) }) else {
            throw ReaderSyncError.invalidInput("account name '\(name)' may contain only letters, digits, '.', '_', '-' and '@'")
        }
    }
}
