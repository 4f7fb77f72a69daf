import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes to stdout or stderr with `write(2)`, without Foundation's buffering or its traps on a closed pipe:
/// `readersync list | head` ends the process by SIGPIPE, as `cat` would.
final class Output: Sendable {
    static let standardOutput = Output(fd: STDOUT_FILENO)
    static let standardError = Output(fd: STDERR_FILENO)

    let fd: Int32

    private init(fd: Int32) { self.fd = fd }

    /// Writes text.
    func write(_ text: String) {
        var text = text
        text.withUTF8 { bytes in write(UnsafeRawBufferPointer(bytes)) }
    }

    /// Writes bytes.
    func write(_ data: Data) {
        data.withUnsafeBytes { write($0) }
    }

    private func write(_ bytes: UnsafeRawBufferPointer) {
        guard var base = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let written = systemWrite(fd, base, left)
            if written < 0 {
                if errno == EINTR { continue }
                return  // EPIPE when SIGPIPE is ignored, or a full disk: nothing more can be shown
            }
            left -= written
            base += written
        }
    }
}

/// `write(2)`.
private func systemWrite(_ fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(fd, bytes, count)
    #elseif canImport(Musl)
    return Musl.write(fd, bytes, count)
    #else
    return Darwin.write(fd, bytes, count)
    #endif
}

/// Collects output and writes it in large pieces: for the thousands of lines of `list` and `log`.
struct BufferedOutput {
    private var buffer: [UInt8] = []
    private let target: Output

    init(_ target: Output = .standardOutput) {
        self.target = target
        buffer.reserveCapacity(1 << 16)
    }

    mutating func write(_ text: String) {
        buffer.append(contentsOf: text.utf8)
        if buffer.count >= 1 << 16 { flush() }
    }

    mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        buffer.append(contentsOf: bytes)
        if buffer.count >= 1 << 16 { flush() }
    }

    mutating func appendSpaces(_ count: Int) {
        for _ in 0..<count { buffer.append(UInt8(ascii: " ")) }
    }

    mutating func line(_ text: String) {
        write(text)
        write("\n")
    }

    mutating func flush() {
        guard !buffer.isEmpty else { return }
        target.write(Data(buffer))
        buffer.removeAll(keepingCapacity: true)
    }
}

/// Whether a standard stream is a terminal.
enum Terminal {
    enum Stream { case standardOutput, standardError }

    static func isTerminal(_ stream: Stream) -> Bool {
        isatty(stream == .standardOutput ? STDOUT_FILENO : STDERR_FILENO) == 1
    }

    /// Restores the default SIGPIPE action, so a closed pipe ends the process quietly.
    static func defaultSigpipe() {
        signal(SIGPIPE, SIG_DFL)
    }
}

// MARK: - Formatting

enum Format {
    /// `1 article`, `2 articles`; `plural` defaults to `singular + "s"`.
    static func count(_ n: Int, _ singular: String, _ plural: String? = nil) -> String {
        "\(n) \(n == 1 ? singular : (plural ?? singular + "s"))"
    }

    /// `12,345`.
    static func grouped(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return n < 0 ? "-" + out : out
    }

    /// `1.2 KiB`.
    static func bytes(_ bytes: Int64) -> String {
        if bytes < 1024 { return "\(bytes) B" }
        if bytes < 1024 * 1024 { return String(format: "%.1f KiB", Double(bytes) / 1024) }
        if bytes < 1024 * 1024 * 1024 { return String(format: "%.1f MiB", Double(bytes) / 1024 / 1024) }
        return String(format: "%.2f GiB", Double(bytes) / 1024 / 1024 / 1024)
    }

    static func bytes(_ bytes: Int) -> String { self.bytes(Int64(bytes)) }

    /// Milliseconds since 1970 of a date, as the store rounds them.
    static func millis(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded(.toNearestOrEven))
    }

    /// `2025-07-03T12:00:00.000Z`: ISO 8601, UTC, milliseconds (the form of every date in `--json` output).
    static func iso(millis: Int64) -> String {
        let (seconds, ms) = floorDivide(millis, 1000)
        let (days, secondOfDay) = floorDivide(seconds, 86_400)
        let (year, month, day) = civil(fromDays: days)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", year, month, day,
                      Int(secondOfDay / 3600), Int(secondOfDay / 60 % 60), Int(secondOfDay % 60), Int(ms))
    }

    static func iso(_ date: Date) -> String { iso(millis: millis(date)) }

    /// `2025-07-03` (UTC).
    static func day(_ date: Date) -> String {
        let (days, _) = floorDivide(floorDivide(millis(date), 1000).0, 86_400)
        let (year, month, day) = civil(fromDays: days)
        return String(format: "%04d-%02d-%02d", year, month, day)
    }

    private static func floorDivide(_ a: Int64, _ b: Int64) -> (Int64, Int64) {
        let q = a / b, r = a % b
        return r < 0 ? (q - 1, r + b) : (q, r)
    }

    /// Howard Hinnant's `civil_from_days`.
    private static func civil(fromDays days: Int64) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (Int(yoe + era * 400 + (m <= 2 ? 1 : 0)), Int(m), Int(d))
    }

    /// `3.2 s`, `1 min 5 s`.
    static func duration(_ seconds: Double) -> String {
        if seconds < 60 { return String(format: "%.1f s", seconds) }
        return "\(Int(seconds) / 60) min \(Int(seconds) % 60) s"
    }
}
