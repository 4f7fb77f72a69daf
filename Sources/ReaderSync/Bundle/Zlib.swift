import CZlib
import Foundation

// Streaming wrappers over zlib's `z_stream`, for the delta-bundle payload.
//
// The C types never leave this file: callers see `Deflater`, `Inflater`, `ZlibError` and `crc32`.
// Every zlib return code is checked; every stream is ended and its memory released in `deinit`.

/// What can go wrong in the zlib layer. ``BundleReader`` and ``BundleWriter`` turn these into
/// ``ReaderSyncError`` values with a bundle-specific message.
enum ZlibError: Error, Equatable, CustomStringConvertible {
    /// The compressed input ended before the zlib stream did.
    case truncated
    /// Bytes followed the end of the zlib stream (the count seen so far).
    case trailingData(UInt64)
    /// The compressed data is not a valid zlib stream (`Z_DATA_ERROR`, `Z_NEED_DICT`); zlib's message.
    case corrupt(String)
    /// The stream inflates to more than the allowed number of bytes (the limit).
    case outputLimitExceeded(UInt64)
    /// zlib itself failed (out of memory, internal state error): the operation and the return code.
    case failed(String, Int32)

    /// One readable line.
    var description: String {
        switch self {
        case .truncated:
            return "compressed data ends before the zlib stream does"
        case .trailingData(let count):
            return "\(count) bytes follow the end of the zlib stream"
        case .corrupt(let message):
            return "compressed data is corrupt (\(message))"
        case .outputLimitExceeded(let limit):
            return "compressed data inflates to more than \(limit) bytes"
        case .failed(let operation, let code):
            return "zlib \(operation) failed with code \(code) (\(zlibCodeName(code)))"
        }
    }
}

/// The symbolic name of a zlib return code, for messages.
private func zlibCodeName(_ code: Int32) -> String {
    switch code {
    case Z_OK: return "Z_OK"
    case Z_STREAM_END: return "Z_STREAM_END"
    case Z_NEED_DICT: return "Z_NEED_DICT"
    case Z_ERRNO: return "Z_ERRNO"
    case Z_STREAM_ERROR: return "Z_STREAM_ERROR"
    case Z_DATA_ERROR: return "Z_DATA_ERROR"
    case Z_MEM_ERROR: return "Z_MEM_ERROR"
    case Z_BUF_ERROR: return "Z_BUF_ERROR"
    case Z_VERSION_ERROR: return "Z_VERSION_ERROR"
    default: return "unknown"
    }
}

/// zlib's message for the last error on `stream`, or `fallback`.
private func zlibMessage(_ stream: UnsafeMutablePointer<z_stream>, fallback: String) -> String {
    if let msg = stream.pointee.msg { return String(cString: msg) }
    return fallback
}

/// The largest chunk handed to zlib in one call (`avail_in`/`avail_out` are 32-bit).
private let maxZlibChunk = Int(UInt32.max)

/// CRC-32 (zlib's `crc32`, the ISO-HDLC / PKZIP polynomial) of `bytes`, continuing from `crc`
/// (0 to start; pass the previous result to checksum data that arrives in pieces).
func crc32(_ bytes: some ContiguousBytes, continuing crc: UInt32 = 0) -> UInt32 {
    bytes.withUnsafeBytes { raw -> UInt32 in
        var value = uLong(crc)
        guard var base = raw.baseAddress?.assumingMemoryBound(to: Bytef.self) else { return crc }
        var remaining = raw.count
        while remaining > 0 {
            let chunk = min(remaining, maxZlibChunk)
            value = CZlib.crc32(value, base, uInt(chunk))
            base += chunk
            remaining -= chunk
        }
        return UInt32(truncatingIfNeeded: value)
    }
}

/// A streaming zlib-format (RFC 1950) compressor: windowBits 15, memLevel 8, default strategy.
///
/// Feed input with ``compress(_:)``; end with ``finish()``. Each call returns the compressed bytes
/// produced so far. Not thread-safe.
final class Deflater {
    private let stream: UnsafeMutablePointer<z_stream>
    /// Whether `deflateEnd` ran (or there is nothing to end).
    private var isEnded = false
    /// Whether init failed; the stream memory was released before throwing.
    private var initFailed = false
    private var isFinished = false
    /// Uncompressed bytes consumed so far.
    private(set) var totalIn: UInt64 = 0
    /// Compressed bytes produced so far.
    private(set) var totalOut: UInt64 = 0

    /// The output buffer size of one `deflate` call.
    private static let outputChunk = 64 * 1024

    /// Creates a compressor at `level` (0…9; 6 is zlib's default trade-off).
    /// - Throws: ``ZlibError/failed(_:_:)`` if zlib cannot initialize.
    init(level: Int32 = 6) throws {
        stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let code = readersync_deflateInit2(stream, level, Z_DEFLATED, 15, 8, Z_DEFAULT_STRATEGY)
        guard code == Z_OK else {
            stream.deinitialize(count: 1)
            stream.deallocate()
            isEnded = true
            initFailed = true
            throw ZlibError.failed("deflateInit2", code)
        }
    }

    deinit {
        guard !initFailed else { return }
        // An abandoned stream (an error, or a writer dropped before finishing) ends with Z_DATA_ERROR
        // ("freed prematurely"); that is expected here and there is nobody to report it to.
        if !isEnded { _ = deflateEnd(stream) }
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// Compresses `input`; returns the compressed bytes that zlib emitted (possibly none).
    func compress(_ input: some ContiguousBytes) throws -> [UInt8] {
        guard !isFinished, !isEnded else { throw ZlibError.failed("deflate after the end of the stream", Z_STREAM_ERROR) }
        return try run(input, flush: Z_NO_FLUSH)
    }

    /// Ends the stream: returns the remaining compressed bytes, including the Adler-32 trailer.
    func finish() throws -> [UInt8] {
        guard !isFinished, !isEnded else { throw ZlibError.failed("deflate after the end of the stream", Z_STREAM_ERROR) }
        let output = try run([UInt8](), flush: Z_FINISH)
        isFinished = true
        let code = deflateEnd(stream)
        isEnded = true
        guard code == Z_OK else { throw ZlibError.failed("deflateEnd", code) }
        return output
    }

    private func run(_ input: some ContiguousBytes, flush: Int32) throws -> [UInt8] {
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: Self.outputChunk)
        defer {
            stream.pointee.next_in = nil
            stream.pointee.next_out = nil
        }
        try input.withUnsafeBytes { raw in
            var offset = 0
            // At least one pass, even with empty input (Z_FINISH must run).
            repeat {
                let chunk = min(raw.count - offset, maxZlibChunk)
                let mode = offset + chunk == raw.count ? flush : Z_NO_FLUSH
                if chunk > 0, let base = raw.baseAddress {
                    stream.pointee.next_in = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: Bytef.self) + offset)
                } else {
                    stream.pointee.next_in = nil
                }
                stream.pointee.avail_in = uInt(chunk)
                while true {
                    var produced = 0
                    let code = buffer.withUnsafeMutableBytes { out -> Int32 in
                        stream.pointee.next_out = out.baseAddress?.assumingMemoryBound(to: Bytef.self)
                        stream.pointee.avail_out = uInt(out.count)
                        let code = deflate(stream, mode)
                        produced = out.count - Int(stream.pointee.avail_out)
                        return code
                    }
                    output.append(contentsOf: buffer[0..<produced])
                    totalOut += UInt64(produced)
                    if mode == Z_FINISH {
                        if code == Z_STREAM_END { break }
                        // Z_OK: more output pending. Z_BUF_ERROR cannot happen with room in the buffer.
                        guard code == Z_OK else { throw ZlibError.failed("deflate", code) }
                        continue
                    }
                    switch code {
                    case Z_OK:
                        break
                    case Z_BUF_ERROR:
                        // No progress possible: all input consumed and nothing pending. Not an error.
                        guard stream.pointee.avail_in == 0 else { throw ZlibError.failed("deflate", code) }
                    default:
                        throw ZlibError.failed("deflate", code)
                    }
                    // A full output buffer may mean more output is pending.
                    if stream.pointee.avail_in == 0 && stream.pointee.avail_out > 0 { break }
                }
                totalIn += UInt64(chunk)
                offset += chunk
            } while offset < raw.count
        }
        return output
    }

    /// Compresses `data` in one go (for tests and small payloads).
    static func compress(_ data: some ContiguousBytes, level: Int32 = 6) throws -> [UInt8] {
        let deflater = try Deflater(level: level)
        var output = try deflater.compress(data)
        output += try deflater.finish()
        return output
    }
}

/// A streaming zlib-format (RFC 1950) decompressor with a cap on the total output.
///
/// Hand it compressed bytes with ``provide(_:)`` whenever ``needsInput`` is true, pull output with
/// ``inflate(maxOutput:)``, and call ``end()`` once the input is exhausted: that is where a truncated
/// stream or trailing garbage is reported. Corrupted data (`Z_DATA_ERROR`) and output beyond the cap
/// throw from ``inflate(maxOutput:)``. Not thread-safe.
final class Inflater {
    private let stream: UnsafeMutablePointer<z_stream>
    /// Whether `inflateEnd` ran (or there is nothing to end).
    private var isEnded = false
    /// Whether init failed; the stream memory was released before throwing.
    private var initFailed = false
    private var input = Data()
    private var inputOffset = 0
    /// The most bytes the stream may inflate to; more throws ``ZlibError/outputLimitExceeded(_:)``.
    let outputLimit: UInt64
    /// Compressed bytes consumed so far (excluding trailing bytes after the stream end).
    private(set) var totalIn: UInt64 = 0
    /// Bytes produced so far.
    private(set) var totalOut: UInt64 = 0
    /// Whether the end of the zlib stream (with a valid Adler-32) was reached.
    private(set) var isFinished = false
    /// Bytes provided after the end of the stream.
    private(set) var trailingBytes: UInt64 = 0

    /// Creates a decompressor that refuses to produce more than `outputLimit` bytes in total.
    /// - Throws: ``ZlibError/failed(_:_:)`` if zlib cannot initialize.
    init(outputLimit: UInt64 = .max) throws {
        self.outputLimit = outputLimit
        stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let code = readersync_inflateInit2(stream, 15)
        guard code == Z_OK else {
            stream.deinitialize(count: 1)
            stream.deallocate()
            isEnded = true
            initFailed = true
            throw ZlibError.failed("inflateInit2", code)
        }
    }

    deinit {
        guard !initFailed else { return }
        // Reached only for a stream abandoned before its end; inflateEnd cannot fail on a valid stream,
        // and deinit has nobody to report to.
        if !isEnded { _ = inflateEnd(stream) }
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// Whether the decompressor has consumed all provided input and the stream has not ended.
    var needsInput: Bool { !isFinished && inputOffset >= input.count }

    /// Adds compressed bytes. After the end of the stream they only count as ``trailingBytes``.
    func provide(_ data: Data) {
        if isFinished {
            trailingBytes += UInt64(data.count)
            return
        }
        if inputOffset >= input.count {
            input = data
        } else {
            input = input.subdata(in: (input.startIndex + inputOffset)..<input.endIndex) + data
        }
        inputOffset = 0
    }

    /// Inflates up to `maxOutput` bytes from the input provided so far. Returns fewer (possibly none)
    /// when the input runs out (see ``needsInput``) or the stream ends (see ``isFinished``).
    /// - Throws: ``ZlibError/corrupt(_:)`` for invalid data, ``ZlibError/outputLimitExceeded(_:)``
    ///   when the total output would pass ``outputLimit``.
    func inflate(maxOutput: Int) throws -> [UInt8] {
        guard !isFinished, !isEnded, maxOutput > 0 else { return [] }
        // Allow one byte past the limit so that exceeding it is detected, never performed further.
        let allowance = outputLimit - min(totalOut, outputLimit)
        let room = allowance == .max ? allowance : allowance + 1
        let capacity = Int(min(UInt64(min(maxOutput, maxZlibChunk)), room))
        var buffer = [UInt8](repeating: 0, count: capacity)
        var consumed = 0
        var produced = 0
        let available = min(input.count - inputOffset, maxZlibChunk)
        let code = input.withUnsafeBytes { raw -> Int32 in
            buffer.withUnsafeMutableBytes { out -> Int32 in
                if available > 0, let base = raw.baseAddress {
                    stream.pointee.next_in = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: Bytef.self) + inputOffset)
                } else {
                    stream.pointee.next_in = nil
                }
                stream.pointee.avail_in = uInt(available)
                stream.pointee.next_out = out.baseAddress?.assumingMemoryBound(to: Bytef.self)
                stream.pointee.avail_out = uInt(out.count)
                let code = CZlib.inflate(stream, Z_NO_FLUSH)
                consumed = available - Int(stream.pointee.avail_in)
                produced = out.count - Int(stream.pointee.avail_out)
                stream.pointee.next_in = nil
                stream.pointee.next_out = nil
                return code
            }
        }
        inputOffset += consumed
        totalIn += UInt64(consumed)
        totalOut += UInt64(produced)
        if totalOut > outputLimit { throw ZlibError.outputLimitExceeded(outputLimit) }
        switch code {
        case Z_OK:
            break
        case Z_STREAM_END:
            isFinished = true
            trailingBytes += UInt64(input.count - inputOffset)
            input = Data()
            inputOffset = 0
            let endCode = inflateEnd(stream)
            isEnded = true
            guard endCode == Z_OK else { throw ZlibError.failed("inflateEnd", endCode) }
        case Z_BUF_ERROR:
            // No progress was possible: more input is needed (or the output buffer was empty). Not fatal.
            break
        case Z_DATA_ERROR:
            throw ZlibError.corrupt(zlibMessage(stream, fallback: "Z_DATA_ERROR"))
        case Z_NEED_DICT:
            throw ZlibError.corrupt("the stream asks for a preset dictionary")
        default:
            throw ZlibError.failed("inflate", code)
        }
        buffer.removeSubrange(produced...)
        return buffer
    }

    /// Declares that no more input will come. Throws ``ZlibError/truncated`` if the stream did not end,
    /// ``ZlibError/trailingData(_:)`` if bytes followed its end.
    func end() throws {
        guard isFinished else { throw ZlibError.truncated }
        guard trailingBytes == 0 else { throw ZlibError.trailingData(trailingBytes) }
    }

    /// Inflates `data` in one go, refusing more than `limit` bytes of output; checks that the stream
    /// ends exactly at the end of `data`.
    static func decompress(_ data: Data, limit: UInt64 = .max) throws -> [UInt8] {
        let inflater = try Inflater(outputLimit: limit)
        inflater.provide(data)
        var output: [UInt8] = []
        while !inflater.isFinished {
            let consumed = inflater.totalIn
            let chunk = try inflater.inflate(maxOutput: 64 * 1024)
            if chunk.isEmpty && (inflater.needsInput || inflater.totalIn == consumed) { break }  // end() reports it
            output += chunk
        }
        try inflater.end()
        return output
    }
}
