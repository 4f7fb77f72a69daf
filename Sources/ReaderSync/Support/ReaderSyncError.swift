import Foundation

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
    /// The network or the remote peer failed.
    case transport(String)

    /// The message, without the case name.
    public var message: String {
        switch self {
        case .notFound(let m), .invalidInput(let m), .invalidImport(let m), .forbidden(let m),
             .incompatibleReplica(let m), .invalidBundle(let m), .invalidValue(let m), .missingChanges(let m),
             .clockSkew(let m), .storage(let m), .transport(let m):
            return m
        }
    }

    /// One readable line: the message.
    public var description: String { message }
}
