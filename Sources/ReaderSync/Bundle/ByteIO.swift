import Foundation

// Little-endian integers, LEB128 varints, zigzag and length-prefixed UTF-8 strings: the byte-level building
// blocks of the bundle format (`Schemas/bundle-format.md` §1).

extension BundleFormat {
    /// The length of `value` as a varint.
    static func varintLength(_ value: UInt64) -> Int {
        var length = 1
        var v = value >> 7
        while v > 0 {
            length += 1
            v >>= 7
        }
        return length
    }

    // MARK: Varints and zigzag

    /// Zigzag-maps a signed integer so that small magnitudes become small unsigned ones.
    static func zigzag(_ value: Int64) -> UInt64 {
        UInt64(bitPattern: (value << 1) ^ (value >> 63))
    }

    /// The inverse of ``zigzag(_:)``.
    static func unzigzag(_ value: UInt64) -> Int64 {
        Int64(bitPattern: (value >> 1) ^ (0 &- (value & 1)))
    }

    /// Little-endian output buffer.
    struct ByteWriter {
        /// The bytes written so far.
        var bytes: [UInt8] = []

        /// Appends one byte.
        mutating func u8(_ value: UInt8) { bytes.append(value) }
        /// Appends 2 bytes, little-endian.
        mutating func u16(_ value: UInt16) { fixed(UInt64(value), width: 2) }
        /// Appends 4 bytes, little-endian.
        mutating func u32(_ value: UInt32) { fixed(UInt64(value), width: 4) }
        /// Appends 8 bytes, little-endian.
        mutating func u64(_ value: UInt64) { fixed(value, width: 8) }

        private mutating func fixed(_ value: UInt64, width: Int) {
            for i in 0..<width { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(i)))) }
        }

        /// Appends an unsigned LEB128 varint (7 bits per byte, low groups first, minimal length).
        mutating func varint(_ value: UInt64) {
            var v = value
            while v >= 0x80 {
                bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
                v >>= 7
            }
            bytes.append(UInt8(v))
        }

        /// Appends a zigzag varint.
        mutating func signed(_ value: Int64) { varint(BundleFormat.zigzag(value)) }

        /// Appends raw bytes.
        mutating func raw(_ data: some Sequence<UInt8>) { bytes.append(contentsOf: data) }

        /// Appends a varint byte length and the UTF-8 bytes.
        mutating func string(_ utf8: [UInt8]) {
            varint(UInt64(utf8.count))
            bytes.append(contentsOf: utf8)
        }

        /// Appends a varint byte length and the UTF-8 bytes of `text` (copied in one piece).
        mutating func string(_ text: String) {
            var text = text
            text.withUTF8 { utf8 in
                varint(UInt64(utf8.count))
                bytes.append(contentsOf: utf8)
            }
        }
    }

    /// Bounds-checked little-endian input cursor. Every failure is a ``ReaderSyncError/invalidBundle(_:)``
    /// whose message starts with `context`.
    struct ByteReader {
        private let bytes: [UInt8]
        /// The read position.
        private(set) var position: Int
        private let end: Int
        /// The start of every error message, e.g. "bundle header is corrupt".
        let context: String

        /// A cursor over `bytes[range]`.
        init(_ bytes: [UInt8], range: Range<Int>? = nil, context: String) {
            self.bytes = bytes
            let r = range ?? 0..<bytes.count
            position = r.lowerBound
            end = r.upperBound
            self.context = context
        }

        /// Bytes left.
        var remaining: Int { end - position }

        private func fail(_ message: String) -> ReaderSyncError {
            .invalidBundle("\(context): \(message)")
        }

        private mutating func take(_ count: Int, _ what: @autoclosure () -> String) throws -> Range<Int> {
            guard count >= 0, count <= remaining else {
                throw fail("\(what()) runs past the end (\(count) bytes needed, \(remaining) left)")
            }
            defer { position += count }
            return position..<(position + count)
        }

        /// Reads one byte.
        mutating func u8(_ what: @autoclosure () -> String) throws -> UInt8 {
            bytes[try take(1, what()).lowerBound]
        }

        /// Reads a little-endian u16.
        mutating func u16(_ what: @autoclosure () -> String) throws -> UInt16 {
            UInt16(truncatingIfNeeded: try fixed(2, what()))
        }

        /// Reads a little-endian u32.
        mutating func u32(_ what: @autoclosure () -> String) throws -> UInt32 {
            UInt32(truncatingIfNeeded: try fixed(4, what()))
        }

        /// Reads a little-endian u64.
        mutating func u64(_ what: @autoclosure () -> String) throws -> UInt64 {
            try fixed(8, what())
        }

        private mutating func fixed(_ width: Int, _ what: @autoclosure () -> String) throws -> UInt64 {
            let range = try take(width, what())
            var value: UInt64 = 0
            for (i, index) in range.enumerated() { value |= UInt64(bytes[index]) << (8 * UInt64(i)) }
            return value
        }

        /// Reads a minimal unsigned LEB128 varint of at most 10 bytes that fits 64 bits.
        mutating func varint(_ what: @autoclosure () -> String) throws -> UInt64 {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            for i in 0..<10 {
                guard position < end else { throw fail("\(what()) runs past the end (unfinished varint)") }
                let byte = bytes[position]
                position += 1
                if i == 9 && byte > 1 { throw fail("\(what()) is a varint larger than 64 bits") }
                value |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 {
                    if i > 0 && byte == 0 { throw fail("\(what()) is a varint with redundant trailing zero groups") }
                    return value
                }
                shift += 7
            }
            throw fail("\(what()) is a varint longer than 10 bytes")
        }

        /// Reads a zigzag varint.
        mutating func signed(_ what: @autoclosure () -> String) throws -> Int64 {
            BundleFormat.unzigzag(try varint(what()))
        }

        /// Reads `count` raw bytes.
        mutating func raw(_ count: Int, _ what: @autoclosure () -> String) throws -> ArraySlice<UInt8> {
            bytes[try take(count, what())]
        }

        /// Reads a varint length (at most `limit`) and that many bytes of valid UTF-8.
        mutating func string(limit: Int, _ what: @autoclosure () -> String) throws -> String {
            let length = try varint("the length of \(what())")
            guard length <= UInt64(limit) else {
                throw fail("\(what()) is \(length) bytes long (limit \(limit))")
            }
            let slice = try raw(Int(length), what())
            guard let text = String(validating: slice, as: UTF8.self) else {
                throw fail("\(what()) is not valid UTF-8")
            }
            return text
        }
    }

}
