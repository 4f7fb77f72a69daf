public import Foundation

/// How much disk a replica may use, and which bodies stay whatever the budget.
///
/// When the replica is over budget (after a sync, or on ``Replica/enforceStorageBudget()-4en2o``), it evicts the bodies
/// of articles that are read and not saved, least recently opened first, then of unread articles older than
/// ``keepUnreadFor``. Titles, metadata, read states and comments always stay; so do saved articles' bodies.
/// Eviction is replica-local: it records no change and moves no knowledge (`Schemas/store-schema.md`, "Bodies
/// and the storage budget").
public struct StorageBudget: Sendable, Equatable, Codable {
    /// The most bytes the replica's database may use (its pages in use, as SQLite counts them).
    public var bytes: Int64
    /// Unread articles published less than this long ago (seconds) keep their body. Default: 7 days.
    public var keepUnreadFor: TimeInterval

    /// Creates a budget.
    public init(bytes: Int64, keepUnreadFor: TimeInterval = 7 * 86_400) {
        self.bytes = bytes
        self.keepUnreadFor = keepUnreadFor
    }

    /// Parses a size such as `50MB`, `1.5 GB`, `512KiB` or `1000000` (bytes). Units: B, KB, MB, GB (powers of
    /// 1000) and KiB, MiB, GiB (powers of 1024), in any case.
    /// - Throws: ``ReaderSyncError/invalidInput(_:)`` naming what is wrong.
    public static func parseSize(_ text: String) throws -> Int64 {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let digits = trimmed.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
        let unit = trimmed.dropFirst(digits.count).trimmingCharacters(in: .whitespaces).lowercased()
        guard !digits.isEmpty, let number = Double(digits), number.isFinite else {
            throw ReaderSyncError.invalidInput("'\(text)' is not a size; write a number and a unit, such as 50MB or 512KiB")
        }
        let factors: [String: Double] = [
            "": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
            "kib": 1024, "mib": 1_048_576, "gib": 1_073_741_824, "k": 1e3, "m": 1e6, "g": 1e9,
        ]
        guard let factor = factors[unit] else {
            throw ReaderSyncError.invalidInput("'\(text)' has an unknown unit '\(unit)'; use B, KB, MB, GB, KiB, MiB or GiB")
        }
        let bytes = (number * factor).rounded()
        guard bytes >= 1, bytes < 9e18 else {
            throw ReaderSyncError.invalidInput("'\(text)' is not a usable budget; it must be at least 1 byte")
        }
        return Int64(bytes)
    }

    /// Parses a duration such as `7d`, `36h`, `90m` or `0` (seconds without a unit).
    /// - Throws: ``ReaderSyncError/invalidInput(_:)`` naming what is wrong.
    public static func parseDuration(_ text: String) throws -> TimeInterval {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        let digits = trimmed.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
        let unit = trimmed.dropFirst(digits.count)
        let factors: [Substring: Double] = ["": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800]
        guard !digits.isEmpty, let number = Double(digits), number.isFinite, let factor = factors[unit] else {
            throw ReaderSyncError.invalidInput("'\(text)' is not a duration; write a number and s, m, h, d or w, such as 7d")
        }
        return number * factor
    }

    /// A size for people: `52.4 MB`, `812 KB`, `96 B` (powers of 1000).
    public static func format(bytes: Int64) -> String {
        let value = Double(bytes)
        if value >= 1e9 { return String(format: "%.2f GB", value / 1e9) }
        if value >= 1e6 { return String(format: "%.1f MB", value / 1e6) }
        if value >= 1e3 { return String(format: "%.1f KB", value / 1e3) }
        return "\(bytes) B"
    }
}

/// Whether a replica holds an article's body.
public enum BodyState: String, Sendable, Codable, Equatable {
    /// The body is here.
    case held
    /// This replica evicted it to stay within its storage budget; the title, metadata, read state and comments
    /// stay. Get it back from the server (``Replica/fetchBodies(_:using:)``) or a peer (``Replica/sync(with:progress:)-9sjtq``).
    case evicted
    /// The replica received the article from a peer that had evicted the body (it came by reference); get it
    /// the same way as an evicted one.
    case notReceived
}

/// What enforcing the storage budget did.
public struct EvictionReport: Sendable, Equatable, Codable {
    /// The budget in force, if any.
    public var budget: StorageBudget?
    /// Bytes in use before.
    public var bytesBefore: Int64
    /// Bytes in use after.
    public var bytesAfter: Int64
    /// The database file's size after (pages in use plus free pages not yet returned to the file system).
    public var fileBytes: Int64
    /// Bodies evicted.
    public var evicted: Int
    /// Their text, in UTF-8 bytes.
    public var evictedBodyBytes: Int64
    /// True when the replica is still over budget: everything left is protected (saved, recent unread,
    /// titles, read states, comments).
    public var stillOverBudget: Bool

    /// Creates a report.
    public init(budget: StorageBudget?, bytesBefore: Int64, bytesAfter: Int64, fileBytes: Int64, evicted: Int,
                evictedBodyBytes: Int64, stillOverBudget: Bool) {
        self.budget = budget
        self.bytesBefore = bytesBefore
        self.bytesAfter = bytesAfter
        self.fileBytes = fileBytes
        self.evicted = evicted
        self.evictedBodyBytes = evictedBodyBytes
        self.stillOverBudget = stillOverBudget
    }
}

/// An article body with its digest, as a server or a peer hands it back (`POST /v1/articles/bodies`).
public struct ArticleBody: Sendable, Codable, Equatable {
    /// The article's id.
    public var id: String
    /// The SHA-256 of the body's UTF-8 bytes, as 64 lowercase hexadecimal digits.
    public var sha256: String
    /// The text.
    public var body: String

    /// Creates a body value.
    public init(id: String, sha256: String, body: String) {
        self.id = id
        self.sha256 = sha256
        self.body = body
    }

    /// A body value with its digest computed.
    public init(id: String, body: String) {
        self.init(id: id, sha256: SHA256.hexString(SHA256.digest(utf8: body)), body: body)
    }
}

/// What bringing bodies back did.
public struct BodyFillReport: Sendable, Equatable, Codable {
    /// Bodies put back.
    public var filled: Int = 0
    /// Bodies offered whose digest did not match the article's: refused, nothing written.
    public var rejected: Int = 0
    /// Asked-for bodies the other side did not hold either.
    public var missing: Int = 0
    /// Ids of the rejected bodies (at most 20).
    public var rejectedIDs: [String] = []

    /// Creates an empty report.
    public init() {}
}
