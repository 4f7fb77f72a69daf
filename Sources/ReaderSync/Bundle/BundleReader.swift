import Foundation

/// Reads a delta bundle written by ``BundleWriter`` (see `Schemas/bundle-format.md`).
///
/// `init` checks the header (magic, format version, header CRC-32, limits, tables), that the bundle
/// holds exactly the declared payload, and the payload's CRC-32, before returning. ``next()`` then
/// inflates and decodes one block at a time, validating every change; at the end it checks the
/// change count, the uncompressed length, and that the zlib stream ends exactly at the end of the
/// payload. Memory stays bounded: the header, one block (at most 64 MiB, usually about 1 MiB) and
/// zlib's window. Not thread-safe.
///
/// Every problem with the bundle throws ``ReaderSyncError/invalidBundle(_:)`` with a specific message;
/// a file that cannot be opened or read throws ``ReaderSyncError/storage(_:)``. After ``next()`` throws,
/// it keeps throwing the same error.
final class BundleReader {
    /// The validated header.
    let header: BundleHeader
    /// The header's size in bytes.
    let headerLength: Int
    /// The size of the bundle: header plus payload.
    var totalBytes: Int { headerLength + Int(header.payloadLength) }
    /// The bundle's keys so far (the key column of decoded blocks indexes it).
    private(set) var keys = BundleKeyTable()
    /// Compressed payload bytes consumed so far (for progress).
    var payloadBytesRead: UInt64 { inflater.totalIn }

    private enum State {
        case reading
        case done
        case failed(ReaderSyncError)
    }

    private let source: PayloadSource
    private let inflater: Inflater
    private var validator: BundleFormat.ChangeValidator
    private var state = State.reading
    private var output: [UInt8] = []
    private var outputPosition = 0
    private var block: DecodedBlock?
    private var blockPosition = 0
    private var blockNumber = 0
    private var decoded: UInt64 = 0

    /// The most bytes inflated per zlib call.
    private static let inflateChunk = 64 * 1024

    /// Reads a bundle held in memory.
    /// - Throws: ``ReaderSyncError/invalidBundle(_:)`` naming the first problem found in the header,
    ///   the size or the payload checksum.
    convenience init(data: Data) throws {
        let total = UInt64(data.count)
        let headerLength = try BundleFormat.checkPrefix(Array(data.prefix(BundleFormat.frozenPrefixLength)), totalSize: total)
        let header = try BundleFormat.decodeHeader(Array(data.prefix(headerLength)))
        try BundleFormat.checkSize(header, headerLength: headerLength, totalSize: total)
        let payload = data.dropFirst(headerLength)
        try BundleFormat.checkChecksum(header, computed: crc32(payload))
        try self.init(header: header, headerLength: headerLength, source: PayloadSource(data: payload))
    }

    /// Reads a bundle file, in chunks: the file is never loaded whole.
    /// - Throws: ``ReaderSyncError/invalidBundle(_:)`` as ``init(data:)``; ``ReaderSyncError/storage(_:)``
    ///   if the file cannot be opened or read.
    convenience init(url: URL) throws {
        let path = url.path(percentEncoded: false)
        let handle: FileHandle
        do {
            handle = try FileHandle(forReadingFrom: url)
        } catch {
            throw ReaderSyncError.storage("cannot open bundle file \(path): \(error.localizedDescription)")
        }
        let source = PayloadSource(file: handle, path: path)
        let total = try source.size()
        let prefix = try source.read(at: 0, count: BundleFormat.frozenPrefixLength)
        let headerLength = try BundleFormat.checkPrefix(prefix, totalSize: total)
        let header = try BundleFormat.decodeHeader(try source.read(at: 0, count: headerLength))
        try BundleFormat.checkSize(header, headerLength: headerLength, totalSize: total)
        try BundleFormat.checkChecksum(header, computed: try source.checksum(from: UInt64(headerLength), count: header.payloadLength))
        try source.startPayload(at: UInt64(headerLength), count: header.payloadLength)
        try self.init(header: header, headerLength: headerLength, source: source)
    }

    /// Reads a bundle whose header is `headerBytes` and whose payload comes from `payload` (a writer's spool).
    convenience init(headerBytes: [UInt8], payload: PayloadSource) throws {
        let header = try BundleFormat.decodeHeader(headerBytes)
        try payload.startPayload(at: 0, count: header.payloadLength)
        try self.init(header: header, headerLength: headerBytes.count, source: payload)
    }

    private init(header: BundleHeader, headerLength: Int, source: PayloadSource) throws {
        self.header = header
        self.headerLength = headerLength
        self.source = source
        let originIndex = try BundleFormat.indexTables(account: header.account, origins: header.origins,
                                                       ranges: header.ranges, context: "bundle header is invalid")
        validator = BundleFormat.ChangeValidator(origins: header.origins, ranges: header.ranges, originIndex: originIndex)
        do {
            inflater = try Inflater(outputLimit: header.uncompressedLength)
        } catch {
            throw ReaderSyncError.storage("cannot read bundle: \(error)")
        }
    }

    /// The next change in stream order, or nil after the last one (and on every later call).
    ///
    /// Before returning nil the first time, checks that the payload held exactly ``BundleHeader/changeCount``
    /// changes, inflated to exactly ``BundleHeader/uncompressedLength`` bytes, and that the zlib stream
    /// ended exactly at the end of the payload.
    /// - Throws: ``ReaderSyncError/invalidBundle(_:)`` naming the problem, e.g. "change 17: unknown entity kind 9".
    func next() throws -> Change? {
        while true {
            if let block, blockPosition < block.count {
                let i = blockPosition
                blockPosition += 1
                let origin = header.origins[Int(block.origin[i])]
                return Change(origin: origin.id, account: origin.account, seq: block.seq[i],
                              hlc: HLCTimestamp(rawValue: block.hlc[i]), entity: block.entity[i],
                              key: keys[block.key[i]], field: block.field[i].name, value: block.value[i])
            }
            guard let next = try nextBlock() else { return nil }
            block = next
            blockPosition = 0
        }
    }

    /// The next decoded block, or nil after the last one (see ``next()`` for the checks at the end). Use either
    /// this or ``next()``, not both.
    func nextBlock() throws -> DecodedBlock? {
        switch state {
        case .done: return nil
        case .failed(let error): throw error
        case .reading: break
        }
        do {
            guard let block = try loadBlock() else {
                try finishStream()
                state = .done
                return nil
            }
            return block
        } catch {
            let failure: ReaderSyncError
            switch error {
            case let error as ReaderSyncError: failure = error
            case let error as ZlibError: failure = Self.payloadError(error)
            default: failure = .invalidBundle("bundle payload is corrupt: \(error)")
            }
            state = .failed(failure)
            block = nil
            output = []
            throw failure
        }
    }

    private static func payloadError(_ error: ZlibError) -> ReaderSyncError {
        switch error {
        case .failed:
            return .storage("cannot read bundle: \(error)")
        case .outputLimitExceeded(let limit):
            return .invalidBundle("bundle payload is corrupt: it inflates to more than the \(limit) bytes its header declares")
        default:
            return .invalidBundle("bundle payload is corrupt: \(error)")
        }
    }

    /// Reads and decodes the next block; nil at the end marker.
    private func loadBlock() throws -> DecodedBlock? {
        blockNumber += 1
        let number = blockNumber
        let count = try readVarint("the change count of block \(number)")
        if count == 0 { return nil }
        guard count <= UInt64(BundleFormat.maxChangesPerBlock) else {
            throw ReaderSyncError.invalidBundle(
                "bundle payload is corrupt: block \(number) claims \(count) changes (limit \(BundleFormat.maxChangesPerBlock))")
        }
        guard count <= header.changeCount - decoded else {
            throw ReaderSyncError.invalidBundle(
                "bundle payload is corrupt: block \(number) brings the change count past the \(header.changeCount) the header declares")
        }
        let length = try readVarint("the length of block \(number)")
        let minimum = count * UInt64(BundleFormat.minBytesPerChange)
        guard length >= minimum, length <= UInt64(BundleFormat.maxBlockBodyLength) else {
            throw ReaderSyncError.invalidBundle(
                "bundle payload is corrupt: block \(number) is \(length) bytes long (\(minimum) to \(BundleFormat.maxBlockBodyLength) allowed for \(count) changes)")
        }
        let body = try readBytes(Int(length), "block \(number)")
        let block = try BundleFormat.decodeBlock(body, count: Int(count), version: header.formatVersion,
                                                 origins: header.origins, keys: &keys, blockNumber: number,
                                                 firstNumber: decoded + 1)
        for i in 0..<block.count {
            try validator.check(origin: block.origin[i], seq: block.seq[i], entity: block.entity[i],
                                field: block.field[i], number: decoded + UInt64(i) + 1)
        }
        decoded += count
        return block
    }

    /// After the end marker: nothing more may inflate, the stream must end exactly at the end of the
    /// payload, and the counts must match the header.
    private func finishStream() throws {
        guard decoded == header.changeCount else {
            throw ReaderSyncError.invalidBundle(
                "bundle payload is corrupt: it holds \(decoded) changes, but the header says \(header.changeCount)")
        }
        var extra = UInt64(output.count - outputPosition)
        output = []
        outputPosition = 0
        while !inflater.isFinished && extra == 0 {
            let before = (inflater.totalIn, inflater.totalOut)
            extra += UInt64(try inflater.inflate(maxOutput: Self.inflateChunk).count)
            if inflater.isFinished || extra > 0 { break }
            if inflater.needsInput {
                guard let more = try source.next() else { break }  // end() reports the truncation
                inflater.provide(more)
            } else if before == (inflater.totalIn, inflater.totalOut) {
                throw ReaderSyncError.invalidBundle("bundle payload is corrupt: zlib made no progress")
            }
        }
        guard extra == 0 else {
            throw ReaderSyncError.invalidBundle("bundle payload is corrupt: \(extra) bytes follow the end marker")
        }
        while let more = try source.next() { inflater.provide(more) }
        try inflater.end()
        guard inflater.totalOut == header.uncompressedLength else {
            throw ReaderSyncError.invalidBundle(
                "bundle payload is corrupt: it inflates to \(inflater.totalOut) bytes, but the header says \(header.uncompressedLength)")
        }
    }

    // MARK: Inflated byte stream

    /// Makes `output` hold unread bytes; throws if the payload ends first.
    private func fill() throws {
        while outputPosition >= output.count {
            if inflater.isFinished {
                throw ReaderSyncError.invalidBundle("bundle payload is corrupt: the compressed stream ends before the end marker")
            }
            let before = inflater.totalIn
            output = try inflater.inflate(maxOutput: Self.inflateChunk)
            outputPosition = 0
            if !output.isEmpty || inflater.isFinished { continue }
            if inflater.needsInput {
                guard let more = try source.next() else { throw ZlibError.truncated }
                inflater.provide(more)
            } else if inflater.totalIn == before {
                throw ReaderSyncError.invalidBundle("bundle payload is corrupt: zlib made no progress")
            }
        }
    }

    private func readByte() throws -> UInt8 {
        try fill()
        let byte = output[outputPosition]
        outputPosition += 1
        return byte
    }

    /// Reads a minimal LEB128 varint from the inflated stream (same rules as `BundleFormat.ByteReader`).
    private func readVarint(_ what: String) throws -> UInt64 {
        var value: UInt64 = 0
        for i in 0..<10 {
            let byte = try readByte()
            if i == 9 && byte > 1 {
                throw ReaderSyncError.invalidBundle("bundle payload is corrupt: \(what) is a varint larger than 64 bits")
            }
            value |= UInt64(byte & 0x7F) << (7 * UInt64(i))
            if byte & 0x80 == 0 {
                if i > 0 && byte == 0 {
                    throw ReaderSyncError.invalidBundle("bundle payload is corrupt: \(what) is a varint with redundant trailing zero groups")
                }
                return value
            }
        }
        throw ReaderSyncError.invalidBundle("bundle payload is corrupt: \(what) is a varint longer than 10 bytes")
    }

    private func readBytes(_ count: Int, _ what: String) throws -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(min(count, 1 << 20))
        while bytes.count < count {
            try fill()
            let take = min(count - bytes.count, output.count - outputPosition)
            bytes.append(contentsOf: output[outputPosition..<(outputPosition + take)])
            outputPosition += take
        }
        return bytes
    }

    /// Where the compressed payload comes from: a slice of memory, or a file read in chunks.
    final class PayloadSource {
        private var data: Data?
        private let file: FileHandle?
        private let path: String
        private var remaining: UInt64 = 0
        private static let chunk = 256 * 1024

        /// The payload bytes, handed to zlib in one piece (zlib's output per call is bounded anyway).
        init(data: Data) {
            self.data = data
            file = nil
            path = "(memory)"
        }

        /// A bundle file; call ``startPayload(at:count:)`` before ``next()``.
        init(file: FileHandle, path: String) {
            self.file = file
            self.path = path
        }

        /// A writer's spool file holding just the payload (`size` bytes).
        init(file: FileHandle, path: String, size: UInt64) {
            self.file = file
            self.path = path
            self.remaining = size
        }

        deinit { try? file?.close() }

        private func storageError(_ error: any Error) -> ReaderSyncError {
            if let error = error as? ReaderSyncError { return error }
            return .storage("cannot read bundle file \(path): \(error.localizedDescription)")
        }

        /// The file's size.
        func size() throws -> UInt64 {
            guard let file else { return UInt64(data?.count ?? 0) }
            do { return try file.seekToEnd() } catch { throw storageError(error) }
        }

        /// Up to `count` bytes at `offset` (fewer at the end of the file).
        func read(at offset: UInt64, count: Int) throws -> [UInt8] {
            guard let file else { return [] }
            do {
                try file.seek(toOffset: offset)
                var bytes: [UInt8] = []
                bytes.reserveCapacity(count)
                while bytes.count < count {
                    guard let chunk = try file.read(upToCount: min(count - bytes.count, Self.chunk)), !chunk.isEmpty else { break }
                    bytes.append(contentsOf: chunk)
                }
                return bytes
            } catch {
                throw storageError(error)
            }
        }

        /// The CRC-32 of `count` bytes at `offset`, read in chunks.
        func checksum(from offset: UInt64, count: UInt64) throws -> UInt32 {
            guard let file else { return 0 }
            do {
                try file.seek(toOffset: offset)
                var crc: UInt32 = 0
                var left = count
                while left > 0 {
                    guard let chunk = try file.read(upToCount: Int(min(left, UInt64(Self.chunk)))), !chunk.isEmpty else {
                        throw ReaderSyncError.invalidBundle("bundle is truncated: the file shrank while being read")
                    }
                    crc = crc32(chunk, continuing: crc)
                    left -= UInt64(chunk.count)
                }
                return crc
            } catch {
                throw storageError(error)
            }
        }

        /// Positions the file at the payload.
        func startPayload(at offset: UInt64, count: UInt64) throws {
            guard let file else { return }
            do { try file.seek(toOffset: offset) } catch { throw storageError(error) }
            remaining = count
        }

        /// The next piece of the payload, or nil at its end.
        func next() throws -> Data? {
            if let data {
                self.data = nil
                return data.isEmpty ? nil : data
            }
            guard let file, remaining > 0 else { return nil }
            do {
                guard let chunk = try file.read(upToCount: Int(min(remaining, UInt64(Self.chunk)))), !chunk.isEmpty else {
                    throw ReaderSyncError.invalidBundle("bundle is truncated: the file shrank while being read")
                }
                remaining -= UInt64(min(UInt64(chunk.count), remaining))
                return chunk
            } catch {
                throw storageError(error)
            }
        }
    }
}
