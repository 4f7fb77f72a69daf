import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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
    private let writtenAtMillis: Int64?
    private let acknowledgements: [BundleAcknowledgement]
    private let originIndex: [BundleOriginInfo: Int]
    private var keys = BundleKeyTable()
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
    ///   origin is not listed, a range with `from > to` or past 2^63 − 1, more than two acknowledgements or one
    ///   past 2^63 − 1, or tables past the format's limits.
    init(source: ReplicaID, account: String, schemaVersion: UInt16, writtenAtMillis: Int64? = nil,
         origins: [BundleOriginInfo], ranges: [KnowledgeRange], acknowledgements: [BundleAcknowledgement] = [],
         spoolDirectory: URL? = nil) throws {
        originIndex = try BundleFormat.indexTables(account: account, origins: origins, ranges: ranges,
                                                   context: "cannot write bundle")
        try BundleFormat.checkAcknowledgements(acknowledgements, context: "cannot write bundle")
        let length = BundleFormat.headerLength(version: BundleFormat.currentVersion, account: account, origins: origins,
                                               rangeCount: ranges.count, acknowledgements: acknowledgements)
        guard length <= BundleFormat.maxHeaderLength else {
            throw ReaderSyncError.invalidBundle(
                "cannot write bundle: its header would be \(length) bytes (limit \(BundleFormat.maxHeaderLength)); split it")
        }
        self.source = source
        self.account = account
        self.schemaVersion = schemaVersion
        self.origins = origins
        self.ranges = ranges
        self.writtenAtMillis = writtenAtMillis
        self.acknowledgements = acknowledgements
        spool = Spool(directory: spoolDirectory ?? FileManager.default.temporaryDirectory)
        validator = BundleFormat.ChangeValidator(origins: origins, ranges: ranges, originIndex: originIndex)
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
        guard let index = originIndex[BundleOriginInfo(id: change.origin, account: change.account)] else {
            throw ReaderSyncError.invalidBundle(
                "cannot write bundle: change \(number): origin \(change.origin) is not in the bundle's origin table")
        }
        guard changeCount < BundleFormat.maxChangeCount else {
            throw ReaderSyncError.invalidBundle(
                "cannot write bundle: more than \(BundleFormat.maxChangeCount) changes; split it")
        }
        for (what, length, limit) in [("key", change.key.utf8.count, BundleFormat.maxKeyBytes),
                                      ("value", change.value.stringValue?.utf8.count ?? 0, BundleFormat.maxStringBytes)] {
            guard length <= limit else {
                throw ReaderSyncError.invalidBundle(
                    "cannot write bundle: change \(number): the \(what) is \(length) bytes (limit \(limit))")
            }
        }
        guard let field = FieldCode(name: change.field, entity: change.entity) else {
            throw ReaderSyncError.invalidBundle("cannot write bundle: change \(number): field '\(change.field)' is not allowed for \(change.entity)")
        }
        // Every check passes before any state changes, so a refused change leaves the writer usable.
        if keys.id(of: change.key) == nil {
            guard keys.count < BundleFormat.maxKeyTableEntries,
                  keys.totalBytes + change.key.utf8.count <= BundleFormat.maxKeyTableBytes else {
                throw ReaderSyncError.invalidBundle("cannot write bundle: more than \(BundleFormat.maxKeyTableEntries) keys or \(BundleFormat.maxKeyTableBytes) bytes of keys; split it")
            }
        }
        do {
            try validator.check(origin: Int32(index), seq: change.seq, entity: change.entity, field: field, number: number)
        } catch let error as ReaderSyncError {
            throw ReaderSyncError.invalidBundle("cannot write bundle: \(error.message)")
        }
        let (keyID, isNew) = keys.intern(change.key)
        block.append(change, field: field, originIndex: index, keyID: keyID, isNewKey: isNew, tableSize: keys.count)
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
                            account: account, writtenAtMillis: writtenAtMillis, origins: origins, ranges: ranges,
                            acknowledgements: acknowledgements, changeCount: changeCount,
                            payloadLength: spool.count, uncompressedLength: deflater.totalIn, checksum: spool.crc)
    }

    /// Finishes the bundle and writes header and payload to `url`, through a temporary file beside it that is
    /// renamed over `url` once complete (a reader never sees half a bundle). The caller decides whether `url`
    /// may be replaced. The writer cannot be used afterwards.
    /// - Returns: The header written.
    /// - Throws: ``ReaderSyncError/storage(_:)`` if the file cannot be written (nothing is left behind).
    func finish(to url: URL) throws -> BundleHeader {
        defer { spool.remove() }
        let header = try finishPayload()
        let headerBytes = try BundleFormat.encodeHeader(header)
        let path = url.path(percentEncoded: false)
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString.prefix(8)).tmp")
        let temporaryPath = temporary.path(percentEncoded: false)
        do {
            guard FileManager.default.createFile(atPath: temporaryPath, contents: nil) else {
                throw ReaderSyncError.storage("cannot create bundle file \(path): its directory is missing or not writable")
            }
            let handle = try FileHandle(forWritingTo: temporary)
            do {
                try handle.write(contentsOf: headerBytes)
                try spool.copy { try handle.write(contentsOf: $0) }
                try handle.synchronize()
                try handle.close()
            } catch {
                try? handle.close()
                throw error
            }
            guard rename(temporaryPath, path) == 0 else {
                throw ReaderSyncError.storage("cannot write bundle file \(path): \(String(cString: strerror(errno)))")
            }
        } catch {
            try? FileManager.default.removeItem(at: temporary)
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

    /// Finishes the bundle and returns a reader over it, without writing it anywhere: the payload is read back
    /// from the spool (memory, or an unnamed temporary file). For replica-to-replica sync.
    func finishReader() throws -> BundleReader {
        let header = try finishPayload()
        let headerBytes = try BundleFormat.encodeHeader(header)
        let source = try spool.takeSource()
        return try BundleReader(headerBytes: headerBytes, payload: source)
    }

    /// The compressed payload: in memory up to 1 MiB, then in a temporary file, which is removed by
    /// ``remove()`` or at the latest in `deinit`. Tracks its length and CRC-32.
    private final class Spool {
        private static let memoryLimit = 1 << 20
        private static let copyChunk = 1 << 20
        private let directory: URL
        private var memory = Data()
        private var file: FileHandle?
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
                let handle: FileHandle
                do {
                    handle = try FileHandle(forUpdating: url)
                } catch {
                    try? FileManager.default.removeItem(at: url)
                    throw ReaderSyncError.storage("cannot open the bundle spool file \(url.path(percentEncoded: false)): \(error.localizedDescription)")
                }
                // Unlinked at once: the open handle keeps the data, and nothing is left behind if the process dies.
                try? FileManager.default.removeItem(at: url)
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

        /// Closes the spool file (already unlinked), if any.
        func remove() {
            if let file {
                try? file.close()
                self.file = nil
            }
            memory = Data()
        }

        /// Hands the spooled bytes over to a bundle reader; the spool is empty afterwards.
        func takeSource() throws -> BundleReader.PayloadSource {
            defer { file = nil; memory = Data() }
            if let file {
                do { try file.seek(toOffset: 0) } catch {
                    throw ReaderSyncError.storage("cannot read back the bundle spool: \(error.localizedDescription)")
                }
                return BundleReader.PayloadSource(file: file, path: "(spool)", size: count)
            }
            return BundleReader.PayloadSource(data: memory)
        }
    }
}
