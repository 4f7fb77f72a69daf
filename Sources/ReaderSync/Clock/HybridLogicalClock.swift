public import Foundation
import Synchronization

/// A hybrid logical clock timestamp: 48 bits of milliseconds since 1970 and a 16-bit counter.
///
/// Timestamps order changes. They stay close to wall-clock time but never go backwards,
/// and a replica that receives a timestamp always stamps its next change after it.
public struct HLCTimestamp: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    /// The packed value: `millis << 16 | counter`.
    public let rawValue: UInt64

    /// Wraps a packed value.
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// Packs milliseconds and a counter.
    public init(millis: UInt64, counter: UInt16) {
        self.rawValue = (millis << 16) | UInt64(counter)
    }

    /// Milliseconds since 1970-01-01T00:00:00Z.
    public var millis: UInt64 { rawValue >> 16 }
    /// The logical counter within one millisecond.
    public var counter: UInt16 { UInt16(truncatingIfNeeded: rawValue) }
    /// The physical part as a date.
    public var date: Date { Date(timeIntervalSince1970: Double(millis) / 1000) }

    /// The zero timestamp, before every real one.
    public static let zero = HLCTimestamp(rawValue: 0)

    /// Timestamps order by their packed value.
    public static func < (lhs: HLCTimestamp, rhs: HLCTimestamp) -> Bool { lhs.rawValue < rhs.rawValue }

    /// `millis.counter`, with the time in ISO 8601.
    public var description: String { "\(ISO8601.string(fromMillis: Int64(millis)))#\(counter)" }

    /// Decodes the packed value from a JSON number.
    public init(from decoder: any Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(UInt64.self)
    }

    /// Encodes the packed value as a JSON number.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// A source of wall-clock time, in milliseconds since 1970.
///
/// Behind a protocol so tests and simulations can move time by hand.
public protocol WallClock: Sendable {
    /// The current wall-clock time in milliseconds since 1970.
    func nowMillis() -> Int64
}

/// The system's real-time clock.
public struct SystemWallClock: WallClock {
    /// Creates the system clock.
    public init() {}
    /// The current time from `Date()`.
    public func nowMillis() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)) }
}

/// A wall clock that only moves when told to: for tests and deterministic simulations.
public final class ManualWallClock: WallClock {
    private let current: Mutex<Int64>

    /// Creates a clock showing `millis`.
    public init(millis: Int64) { current = Mutex(millis) }

    /// The time it shows.
    public func nowMillis() -> Int64 { current.withLock { $0 } }

    /// Moves the clock by `delta` milliseconds (negative moves it back).
    public func advance(by delta: Int64) { current.withLock { $0 += delta } }

    /// Sets the clock to `millis`.
    public func set(_ millis: Int64) { current.withLock { $0 = millis } }
}

/// The hybrid logical clock algorithm (Kulkarni et al.), as a value: pure state transitions.
///
/// The store persists ``latest`` in the same transaction as the changes it stamps,
/// so the clock survives restarts and stays monotonic when the wall clock jumps backwards.
struct HybridLogicalClock: Sendable, Equatable {
    /// The last timestamp issued or received.
    private(set) var latest: HLCTimestamp

    init(latest: HLCTimestamp) { self.latest = latest }

    /// Issues a timestamp for a local event, later than every earlier one.
    mutating func tick(wallMillis: Int64) throws -> HLCTimestamp {
        let wall = UInt64(max(0, wallMillis))
        if wall > latest.millis {
            latest = HLCTimestamp(millis: wall, counter: 0)
        } else {
            latest = try Self.bump(latest)
        }
        return latest
    }

    /// Takes a received timestamp into account so later local events order after it.
    ///
    /// - Throws: ``ReaderSyncError/clockSkew(_:)`` if `remote` leads the local wall clock by more than
    ///   `maxLeadMillis`; the caller refuses the whole bundle then.
    mutating func receive(_ remote: HLCTimestamp, wallMillis: Int64, maxLeadMillis: Int64) throws {
        let wall = UInt64(max(0, wallMillis))
        if remote.millis > wall, remote.millis - wall > UInt64(max(0, maxLeadMillis)) {
            throw ReaderSyncError.clockSkew(
                "a received change is stamped \(remote) which is \(remote.millis - wall) ms ahead of this replica's clock (bound \(maxLeadMillis) ms); fix the sender's clock")
        }
        if remote > latest { latest = remote }
    }

    private static func bump(_ t: HLCTimestamp) throws -> HLCTimestamp {
        if t.counter == UInt16.max {
            // 65536 events in one millisecond: borrow the next millisecond.
            return HLCTimestamp(millis: t.millis + 1, counter: 0)
        }
        return HLCTimestamp(millis: t.millis, counter: t.counter + 1)
    }
}

/// ISO 8601 formatting with milliseconds, UTC, for canonical output.
enum ISO8601 {
    static func string(fromMillis millis: Int64) -> String {
        let seconds = Double(millis) / 1000
        let date = Date(timeIntervalSince1970: seconds)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? TimeZone(secondsFromGMT: 0) ?? .current
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        let ms = ((millis % 1000) + 1000) % 1000
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                      c.year ?? 0, c.month ?? 0, c.day ?? 0, c.hour ?? 0, c.minute ?? 0, c.second ?? 0, Int(ms))
    }

    static func string(from date: Date) -> String {
        string(fromMillis: millis(from: date))
    }

    static func millis(from date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded(.toNearestOrEven))
    }

    static func date(fromMillis millis: Int64) -> Date {
        Date(timeIntervalSince1970: Double(millis) / 1000)
    }

    /// Parses `2025-07-03T12:00:00Z`, with or without fractional seconds.
    static func parse(_ text: String) -> Date? {
        let withFraction = ISO8601DateFormatter()
        withFraction.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = withFraction.date(from: text) { return d }
        let plain = ISO8601DateFormatter()
        plain.formatOptions = [.withInternetDateTime]
        return plain.date(from: text)
    }
}
