public import Foundation

/// A bundle's header and contents summarized, with the checksum verified and every change decoded.
public struct BundleInspection: Sendable, Equatable, Encodable {
    /// One covered range.
    public struct Range: Sendable, Equatable, Encodable {
        /// The origin replica.
        public var origin: ReplicaID
        /// Its account.
        public var account: String
        /// `shared` or `private`.
        public var scope: String
        /// Changes after this sequence number…
        public var from: UInt64
        /// …up to and including this one.
        public var to: UInt64
        /// The origin's incarnation at `to` (16 hex digits; zeros when unknown).
        public var toIncarnation: String
    }
    /// The bundle format version.
    public var formatVersion: UInt16
    /// The writer's store schema version.
    public var schemaVersion: UInt16
    /// The replica that wrote it.
    public var source: ReplicaID
    /// Its account.
    public var account: String
    /// The sender's clock when it wrote the bundle (ISO 8601), if the bundle says.
    public var writtenAt: String?
    /// Changes carried.
    public var changeCount: UInt64
    /// Changes per entity kind.
    public var countsByEntity: [String: Int]
    /// Compressed payload size.
    public var payloadBytes: UInt64
    /// Payload size before compression.
    public var uncompressedBytes: UInt64
    /// CRC-32 of the payload.
    public var checksum: UInt32
    /// What it covers.
    public var ranges: [Range]

    /// Reads and fully decodes a bundle file.
    /// - Throws: ``ReaderSyncError/invalidBundle(_:)`` naming what is wrong.
    public static func inspect(at url: URL) throws -> BundleInspection {
        let reader = try Replica.guarded("read bundle") { try BundleReader(url: url) }
        var counts: [String: Int] = [:]
        while let change = try Replica.guarded("read bundle", { try reader.next() }) {
            counts[change.entity.description, default: 0] += 1
        }
        let h = reader.header
        return BundleInspection(
            formatVersion: h.formatVersion, schemaVersion: h.schemaVersion, source: h.source, account: h.account,
            writtenAt: h.writtenAtMillis.map { ISO8601.string(fromMillis: $0) },
            changeCount: h.changeCount, countsByEntity: counts, payloadBytes: h.payloadLength,
            uncompressedBytes: h.uncompressedLength, checksum: h.checksum,
            ranges: h.ranges.map { Range(origin: $0.origin, account: $0.account, scope: $0.scope.description,
                                         from: $0.from, to: $0.to, toIncarnation: Knowledge.hex16($0.toIncarnation)) })
    }
}
