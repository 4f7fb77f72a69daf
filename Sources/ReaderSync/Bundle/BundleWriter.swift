import Foundation

/// Writes a delta bundle: a header naming the source, origins and ranges, then the changes in
/// compressed columnar blocks (see `Schemas/bundle-format.md`).
///
/// Changes are validated as they are appended (origin in the table, field allowed for the entity,
/// seq inside its range and increasing per origin and scope), so a writer never produces a bundle
/// that ``BundleReader`` refuses. Memory stays bounded for any bundle size: the current block is at
/// most about 1 MiB plus one change, and the compressed payload spools to a temporary file once it
/// passes 1 MiB. Not thread-safe.
final class BundleWriter {
    private let source: ReplicaID
    private let account: String
    private let schemaVersion: UInt16
    private let origins: [BundleOriginInfo]
    private let ranges: [KnowledgeRange]
    private let originIndex: [ReplicaID: Int]
    private var validator: BundleFormat.ChangeValidator
    private var block = BundleFormat.BlockEncoder()
    private let deflater: Deflater
    private let spool: Spool
    private var changeCount: UInt64 = 0
    private var isFinished = false

    /// Starts a bundle.
    ///
    /// `origins` must list every origin appearing in `ranges` and in appended changes, each once.
    /// A payload past 1 MiB spools to a temporary file in `spoolDirectory` (default: the system's
    /// temporary directory), removed when the writer finishes or goes away.
    /// - Throws: ``ReaderSyncError/invalidBundle(_:)`` for duplicate origins or ranges, a range whose
    ///   origin is not listed, a range with `from > to`, or tables past the format's limits.
    init(source: ReplicaID, account: String, schemaVersion: UInt16, origins: [BundleOriginInfo],
         ranges: [KnowledgeRange], spoolDirectory: URL? = nil) throws {
        originIndex = try BundleFormat.indexTables(account: account, origins: origins, ranges: ranges,
                                                   context: "cannot write bundle")
        let length = BundleFormat.headerLength(account: account, origins: origins, rangeCount: ranges.count)
        guard length <= BundleFormat.maxHeaderLength else {
            throw ReaderSyncError.invalidBundle(
                "cannot write bundle: its header would be \(length) bytes (limit \(BundleFormat.maxHeaderLength)); split it")
        }
        self.source = source
        self.account = account
        self.schemaVersion = schemaVersion
        self.origins = origins
        self.ranges = ranges
        spool = Spool(directory: spoolDirectory ?? FileManager.default.temporaryDirectory)
        validator = BundleFormat.ChangeValidator(ranges: ranges, originIndex: originIndex)
        do {
            deflater = try Deflater(level: 6)
        } catch {
            throw ReaderSyncError.storage("cannot write bundle: \(error)")
        }
    }

    /// Appends a change.
    /// - Throws: ``ReaderSyncError/invalidBundle(_:)`` if the change's origin is not in the origin table,
    ///   its field is not allowed for its entity, its seq is outside its (origin, scope) range or not
    ///   above the previous one of that origin and scope, or a string is longer than 16 MiB;
    ///   ``ReaderSyncError/storage(_:)`` if spooling fails.
    func append(_ change: Change) throws {
        guard !isFinished else { throw ReaderSyncError.invalidBundle("cannot append to a finished bundle") }
        let number = changeCount + 1
        guard let index = originIndex[change.origin] else {
            throw ReaderSyncError.invalidBundle(
                "cannot write bundle: change \(number): origin \(change.origin) is not in the bundle's origin table")
        }
        guard changeCount < BundleFormat.maxChangeCount else {
            throw ReaderSyncError.invalidBundle(
                "cannot write bundle: more than \(BundleFormat.maxChangeCount) changes; split it")
        }
        for (what, text) in [("key", change.key), ("field", change.field), ("value", change.value.stringValue ?? "")] {
            let length = text.utf8.count
            guard length <= BundleFormat.maxStringBytes else {
                throw ReaderSyncError.invalidBundle(
                    "cannot write bundle: change \(number): the \(what) is \(length) bytes (limit \(BundleFormat.maxStringBytes))")
            }
        }
        do {
            try validator.check(change, originIndex: index, number: number)
        } catch let error as ReaderSyncError {
            throw ReaderSyncError.invalidBundle("cannot write bundle: \(error.message)")
        }
        block.append(change, originIndex: index)
        changeCount = number
        if block.count >= BundleFormat.maxChangesPerBlock || block.bodyLength >= BundleFormat.targetBlockBodyLength {
            try flushBlock()
        }
    }

    private func flushBlock() throws {
        guard block.count > 0 else { return }
        try compress(block.take())
    }

    private func compress(_ bytes: [UInt8]) throws {
        do {
            try spool.write(try deflater.compress(bytes))
        } catch let error as ReaderSyncError {
            throw error
        } catch {
            throw ReaderSyncError.storage("cannot write bundle: \(error)")
        }
    }

    /// Flushes the last block, writes the end marker, ends the zlib stream; returns the header.
    private func finishPayload() throws -> BundleHeader {
        guard !isFinished else { throw ReaderSyncError.invalidBundle("the bundle is already finished") }
        isFinished = true
        try flushBlock()
        try compress([0])  // end marker: a block count of zero
        do {
            try spool.write(try deflater.finish())
        } catch let error as ReaderSyncError {
            throw error
        } catch {
            throw ReaderSyncError.storage("cannot write bundle: \(error)")
        }
        return BundleHeader(formatVersion: BundleFormat.currentVersion, schemaVersion: schemaVersion, source: source,
                            account: account, origins: origins, ranges: ranges, changeCount: changeCount,
                            payloadLength: spool.count, uncompressedLength: deflater.totalIn, checksum: spool.crc)
    }

    /// Finishes the bundle and writes header and payload to `url` (created, or truncated if it exists).
    /// The writer cannot be used afterwards; its temporary spool file is removed.
    /// - Returns: The header written.
    /// - Throws: ``ReaderSyncError/storage(_:)`` if the file cannot be written (a partial file is removed).
    func finish(to url: URL) throws -> BundleHeader {
        defer { spool.remove() }
        let header = try finishPayload()
        let headerBytes = try BundleFormat.encodeHeader(header)
        let path = url.path(percentEncoded: false)
        do {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw ReaderSyncError.storage("cannot create bundle file \(path)")
            }
            let handle = try FileHandle(forWritingTo: url)
            do {
                try handle.write(contentsOf: headerBytes)
                try spool.copy { try handle.write(contentsOf: $0) }
                try handle.synchronize()
                try handle.close()
            } catch {
                try? handle.close()
                throw error
            }
        } catch {
            try? FileManager.default.removeItem(at: url)
            if let error = error as? ReaderSyncError { throw error }
            throw ReaderSyncError.storage("cannot write bundle file \(path): \(error.localizedDescription)")
        }
        return header
    }

    /// Finishes the bundle and returns header and payload bytes. The writer cannot be used afterwards.
    func finishData() throws -> (header: BundleHeader, data: Data) {
        defer { spool.remove() }
        let header = try finishPayload()
        var data = Data(try BundleFormat.encodeHeader(header))
        do {
            try spool.copy { data.append($0) }
        } catch let error as ReaderSyncError {
            throw error
        } catch {
            throw ReaderSyncError.storage("cannot read back the bundle spool: \(error)")
        }
        return (header, data)
    }

    /// The compressed payload: in memory up to 1 MiB, then in a temporary file, which is removed by
    /// ``remove()`` or at the latest in `deinit`. Tracks its length and CRC-32.
    private final class Spool {
        private static let memoryLimit = 1 << 20
        private static let copyChunk = 1 << 20
        private let directory: URL
        private var memory = Data()
        private var file: FileHandle?
        private var fileURL: URL?
        /// Bytes written so far.
        private(set) var count: UInt64 = 0
        /// CRC-32 of the bytes written so far.
        private(set) var crc: UInt32 = 0

        init(directory: URL) { self.directory = directory }

        deinit { remove() }

        /// Appends bytes.
        func write(_ bytes: [UInt8]) throws {
            guard !bytes.isEmpty else { return }
            crc = crc32(bytes, continuing: crc)
            count += UInt64(bytes.count)
            if let file {
                try write(Data(bytes), to: file)
                return
            }
            memory.append(contentsOf: bytes)
            if memory.count > Self.memoryLimit {
                let url = directory.appendingPathComponent("readersync-bundle-\(UUID().uuidString).spool")
                guard FileManager.default.createFile(atPath: url.path(percentEncoded: false), contents: nil) else {
                    throw ReaderSyncError.storage("cannot create the bundle spool file \(url.path(percentEncoded: false))")
                }
                fileURL = url
                let handle: FileHandle
                do {
                    handle = try FileHandle(forUpdating: url)
                } catch {
                    throw ReaderSyncError.storage("cannot open the bundle spool file \(url.path(percentEncoded: false)): \(error.localizedDescription)")
                }
                file = handle
                try write(memory, to: handle)
                memory = Data()
            }
        }

        private func write(_ data: Data, to handle: FileHandle) throws {
            do {
                try handle.write(contentsOf: data)
            } catch {
                throw ReaderSyncError.storage("cannot write the bundle spool file: \(error.localizedDescription)")
            }
        }

        /// Hands the spooled bytes to `sink` in chunks of at most 1 MiB.
        func copy(_ sink: (Data) throws -> Void) throws {
            guard let file else {
                if !memory.isEmpty { try sink(memory) }
                return
            }
            do {
                try file.seek(toOffset: 0)
                var copied: UInt64 = 0
                while copied < count {
                    let want = Int(min(UInt64(Self.copyChunk), count - copied))
                    guard let chunk = try file.read(upToCount: want), !chunk.isEmpty else {
                        throw ReaderSyncError.storage("the bundle spool file is shorter than the \(count) bytes written")
                    }
                    try sink(chunk)
                    copied += UInt64(chunk.count)
                }
            } catch let error as ReaderSyncError {
                throw error
            } catch {
                throw ReaderSyncError.storage("cannot copy the bundle spool: \(error.localizedDescription)")
            }
        }

        /// Closes and deletes the spool file, if any.
        func remove() {
            if let file {
                try? file.close()
                self.file = nil
            }
            if let fileURL {
                try? FileManager.default.removeItem(at: fileURL)
                self.fileURL = nil
            }
            memory = Data()
        }
    }
}
