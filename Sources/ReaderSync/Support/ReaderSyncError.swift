import Foundation
import GRDB

/// Every error the ReaderSync core throws. Each case carries a message that names what is wrong.
///
/// Match on the case to react (for example to show "unknown article"), or print
/// ``description`` as one readable line.
public enum ReaderSyncError: Error, Sendable, Equatable, CustomStringConvertible {
    /// An id that this replica does not hold (article, comment).
    case notFound(String)
    /// A value or argument outside what is allowed (progress outside 0…1, an empty comment…).
    case invalidInput(String)
    /// An import file that cannot be read; the message names the line or field.
    case invalidImport(String)
    /// The action is not allowed for this account (editing someone else's comment…).
    case forbidden(String)
    /// The file is not a ReaderSync replica, or was made by a newer version.
    case incompatibleReplica(String)
    /// A bundle that is malformed, corrupted, from the wrong account, or otherwise refused.
    case invalidBundle(String)
    /// A received change whose key or value is outside its field's rule (`Schemas/merge-rules.md`, "Values"):
    /// the message names the change. Nothing of its bundle was applied.
    case invalidValue(String)
    /// A bundle that needs changes this replica does not hold yet.
    case missingChanges(String)
    /// A received timestamp that leads the local clock by more than the allowed bound.
    case clockSkew(String)
    /// SQLite or the file system failed; the message carries the underlying error.
    case storage(String)
    /// Another process held the replica's lock for longer than the busy timeout (SQLite `BUSY` or `LOCKED`):
    /// retrying later may succeed.
    case busy(String)
    /// The disk is full (SQLite `FULL`): nothing was written; free space and retry.
    case diskFull(String)
    /// The replica file is damaged (SQLite `CORRUPT` or `NOTADB`): restore it from a backup or sync a new one.
    case corrupt(String)
    /// The network or the remote peer failed: the server could not be reached, did not answer, or sent
    /// something unreadable.
    case transport(String)
    /// The server answered with an HTTP error status: 401 (the token is unknown or revoked), 403 (the account
    /// may not do this), 413 (too large), 429 or 503 (still refused after the client's retries), other 4xx and
    /// 5xx. The message carries the server's problem detail.
    case server(status: Int, String)

    /// The message, without the case name.
    public var message: String {
        switch self {
        case .notFound(let m), .invalidInput(let m), .invalidImport(let m), .forbidden(let m),
             .incompatibleReplica(let m), .invalidBundle(let m), .invalidValue(let m), .missingChanges(let m),
             .clockSkew(let m), .storage(let m), .transport(let m), .busy(let m), .diskFull(let m), .corrupt(let m),
             .server(_, let m):
            return m
        }
    }

    /// The HTTP status of a server's error answer (``server(status:_:)``), nil for every other error.
    public var httpStatus: Int? {
        if case .server(let status, _) = self { return status }
        return nil
    }

    /// The SQLite primary result code behind a storage failure, when there was one: 5 (`BUSY`), 6 (`LOCKED`),
    /// 13 (`FULL`), 11 (`CORRUPT`), 26 (`NOTADB`)…, as a number an app can log or match.
    public var sqliteResultCode: Int32? {
        guard case .storage(let m) = self, let range = m.range(of: "[SQLite ", options: .backwards) else {
            switch self {
            case .busy(let m), .diskFull(let m), .corrupt(let m):
                return m.range(of: "[SQLite ", options: .backwards).flatMap { Int32(m[$0.upperBound...].prefix { $0.isNumber }) }
            default: return nil
            }
        }
        return Int32(m[range.upperBound...].prefix { $0.isNumber })
    }

    /// A storage error for a failed SQLite call, by its result code; the message ends with `[SQLite <code>]`.
    init(_ error: DatabaseError, context: String) {
        let line = "\(context): \(error.message ?? error.description) [SQLite \(error.resultCode.primaryResultCode.rawValue)]"
        switch error.resultCode.primaryResultCode {
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            self = .busy(line)
        case .SQLITE_FULL:
            self = .diskFull(line)
        case .SQLITE_CORRUPT, .SQLITE_NOTADB:
            self = .corrupt(line)
        default:
            self = .storage(line)
        }
    }

    /// One readable line: the message.
    public var description: String { message }
}
