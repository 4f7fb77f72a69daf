public import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a command may write a bundle or a knowledge file: never over a replica or another file it did not make,
/// unless told to (`Schemas/merge-rules.md` does not cover files; the CLI's `--force` does).
package enum OutputFile {
    /// What is about to be written.
    package enum Kind: Sendable {
        /// A bundle (`bundle export --out`).
        case bundle
        /// A knowledge file (`knowledge --out`).
        case knowledge

        var name: String { self == .bundle ? "bundle" : "knowledge file" }
    }

    /// Checks that `url` may receive a new `kind` file: it does not exist, or it is a file of the same kind
    /// (replaced), or `force` is set. A ReaderSync replica, a directory, or `replicaPath` itself (the replica
    /// being read) are refused even with `force`.
    /// - Throws: ``ReaderSyncError/invalidInput(_:)`` naming the file and what to do.
    package static func check(_ url: URL, kind: Kind, force: Bool, replicaPath: String?) throws {
        let path = url.path(percentEncoded: false)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return }
        guard !isDirectory.boolValue else {
            throw ReaderSyncError.invalidInput("\(path) is a directory; give the \(kind.name) a file name")
        }
        if let replicaPath, sameFile(path, replicaPath) {
            throw ReaderSyncError.invalidInput("\(path) is the replica itself; write the \(kind.name) to another file")
        }
        let head = prefix(of: path, count: 64)
        if head.starts(with: Array("SQLite format 3\0".utf8)) {
            throw ReaderSyncError.invalidInput(
                "\(path) is a SQLite database (perhaps another replica); refusing to overwrite it with a \(kind.name) — choose another file")
        }
        let sameKind: Bool
        switch kind {
        case .bundle: sameKind = head.starts(with: BundleFormat.magic)
        case .knowledge:
            let text = String(decoding: prefix(of: path, count: 4096), as: UTF8.self)
            sameKind = text.contains("\"readersync-knowledge/") || (text.contains("\"knowledge\"") && text.contains("\"replica\""))
        }
        if !sameKind && !force {
            throw ReaderSyncError.invalidInput(
                "\(path) exists and is not a \(kind.name); refusing to overwrite it (pass --force to replace it)")
        }
    }

    /// Writes `data` to `url` through a temporary file beside it, renamed over it once complete.
    /// - Throws: ``ReaderSyncError/storage(_:)`` naming the file.
    package static func write(_ data: Data, to url: URL) throws {
        let path = url.path(percentEncoded: false)
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString.prefix(8)).tmp")
        do {
            try data.write(to: temporary)
            guard rename(temporary.path(percentEncoded: false), path) == 0 else {
                throw ReaderSyncError.storage("cannot write \(path): \(String(cString: strerror(errno)))")
            }
        } catch let error as ReaderSyncError {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw ReaderSyncError.storage("cannot write \(path): \(error.localizedDescription)")
        }
    }

    private static func prefix(of path: String, count: Int) -> [UInt8] {
        guard let handle = FileHandle(forReadingAtPath: path) else { return [] }
        defer { try? handle.close() }
        return (try? handle.read(upToCount: count)).map { Array($0) } ?? []
    }

    private static func sameFile(_ a: String, _ b: String) -> Bool {
        var sa = stat(), sb = stat()
        guard stat(a, &sa) == 0, stat(b, &sb) == 0 else { return false }
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino
    }
}
