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
package final class ManualWallClock: WallClock {
    private let current: Mutex<Int64>

    /// Creates a clock showing `millis`.
    package init(millis: Int64) { current = Mutex(millis) }

    /// The time it shows.
    package func nowMillis() -> Int64 { current.withLock { $0 } }

    /// Moves the clock by `delta` milliseconds (negative moves it back).
    package func advance(by delta: Int64) { current.withLock { $0 += delta } }

    /// Sets the clock to `millis`.
    package func set(_ millis: Int64) { current.withLock { $0 = millis } }
}

/// The bounds the clock rules use (`Schemas/merge-rules.md`, "Clocks").
public struct ClockBounds: Sendable, Equatable {
    /// No change may be stamped before this (ms since 1970; default 2020-01-01T00:00:00Z). A replica whose wall
    /// clock reads earlier (a dead clock battery) stamps this instead; a received change stamped earlier is refused.
    public var floorMillis: Int64
    /// How far (ms) this replica's clock may run ahead of its wall clock by following received changes
    /// (default 10 minutes). A change stamped further ahead is still merged, but the local clock does not follow
    /// it past this lead, so one device's wrong clock cannot pin every other device's clock in the future.
    public var maxLeadMillis: Int64
    /// A received change stamped more than this (ms) ahead of the wall clock is refused, and its bundle with it
    /// (default 24 hours): a device whose clock is that wrong must be fixed.
    public var maxFutureMillis: Int64

    /// 2020-01-01T00:00:00Z.
    public static let defaultFloorMillis: Int64 = 1_577_836_800_000

    /// Creates bounds; the defaults suit phones and laptops with ordinary clock drift.
    public init(floorMillis: Int64 = ClockBounds.defaultFloorMillis, maxLeadMillis: Int64 = 10 * 60 * 1000,
                maxFutureMillis: Int64 = 24 * 3600 * 1000) {
        self.floorMillis = floorMillis
        self.maxLeadMillis = max(0, maxLeadMillis)
        self.maxFutureMillis = max(self.maxLeadMillis, maxFutureMillis)
    }
}

extension HLCTimestamp {
    /// The next timestamp after this one: the counter plus one, or the next millisecond.
    var successor: HLCTimestamp {
        counter == UInt16.max ? HLCTimestamp(millis: millis + 1, counter: 0) : HLCTimestamp(millis: millis, counter: counter + 1)
    }

    /// The last timestamp of millisecond `millis`.
    static func endOf(millis: Int64) -> HLCTimestamp {
        HLCTimestamp(millis: UInt64(max(0, min(millis, (1 << 48) - 1))), counter: UInt16.max)
    }
}

/// The hybrid logical clock algorithm (Kulkarni et al.), as a value: pure state transitions, with a bound on
/// how far it runs ahead of the wall clock.
///
/// The store persists ``latest`` in the same transaction as the changes it stamps, so the clock survives
/// restarts and stays monotonic when the wall clock jumps backwards by less than the lead bound.
struct HybridLogicalClock: Sendable, Equatable {
    /// The last timestamp issued or followed.
    private(set) var latest: HLCTimestamp

    init(latest: HLCTimestamp) { self.latest = latest }

    /// Issues a timestamp for a local event: after every earlier one, unless the clock had run more than the lead
    /// bound ahead of the wall clock (its wall clock was wrong and has been corrected): then it restarts from
    /// `wall + maxLead`. Never before the floor.
    mutating func tick(wallMillis: Int64, bounds: ClockBounds) -> HLCTimestamp {
        let wall = max(wallMillis, bounds.floorMillis)
        let ceiling = HLCTimestamp.endOf(millis: wall &+ bounds.maxLeadMillis)
        let base = min(latest, ceiling)
        if UInt64(wall) > base.millis {
            latest = HLCTimestamp(millis: UInt64(wall), counter: 0)
        } else {
            latest = base.successor
        }
        return latest
    }

    /// Follows a timestamp issued elsewhere (a merged change, or a local write stamped after a field's winner)
    /// so later local events order after it — but never past the lead bound.
    mutating func follow(_ timestamp: HLCTimestamp, wallMillis: Int64, bounds: ClockBounds) {
        let wall = max(wallMillis, bounds.floorMillis)
        let bounded = min(timestamp, HLCTimestamp.endOf(millis: wall &+ bounds.maxLeadMillis))
        if bounded > latest { latest = bounded }
    }

    /// Why a received timestamp is refused, or nil: before the floor, or more than `maxFutureMillis` ahead of
    /// the wall clock. The message says by how much.
    static func problem(with remote: HLCTimestamp, wallMillis: Int64, bounds: ClockBounds) -> (tooEarly: Bool, leadMillis: Int64)? {
        let millis = Int64(remote.millis)
        if millis < bounds.floorMillis { return (true, 0) }
        if millis > wallMillis, millis - wallMillis > bounds.maxFutureMillis { return (false, millis - wallMillis) }
        return nil
    }
}

/// A duration as "2 h 5 min", "3 days 2 h", "45 s", "250 ms".
func describeDuration(millis: Int64) -> String {
    let ms = abs(millis)
    if ms < 1000 { return "\(ms) ms" }
    let s = ms / 1000
    if s < 60 { return "\(s) s" }
    let m = s / 60
    if m < 60 { return "\(m) min" + (s % 60 == 0 ? "" : " \(s % 60) s") }
    let h = m / 60
    if h < 48 { return "\(h) h" + (m % 60 == 0 ? "" : " \(m % 60) min") }
    return "\(h / 24) days" + (h % 24 == 0 ? "" : " \(h % 24) h")
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
