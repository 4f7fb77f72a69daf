public import Foundation

/// A way to reach a sync server: the three exchanges of HTTP sync, whatever carries them (and the one-request
/// check and fetching article bodies back, which a transport may leave out).
///
/// ``URLSessionTransport`` speaks HTTP with `URLSession`; tests use an `HTTPSyncTransport` over an
/// in-process client. ``Replica/sync(using:options:progress:)`` drives a transport: knowledge, push, pull pages.
///
/// Every method throws ``ReaderSyncError``: ``ReaderSyncError/transport(_:)`` for the network or a failing
/// server, ``ReaderSyncError/forbidden(_:)`` when the server refuses a push for rights.
public protocol SyncTransport: Sendable {
    /// Who the token belongs to.
    func account() async throws -> RemoteAccount
    /// What the server holds that this account may see.
    func knowledge() async throws -> Knowledge
    /// Sends a bundle; the server applies it atomically and says what it now holds.
    func push(_ bundle: Data) async throws -> PushResponse
    /// Asks for a page of what `knowledge` lacks; `maxChanges` nil lets the server choose the page size.
    func pull(knowledge: Knowledge, maxChanges: Int?) async throws -> PullPage
    /// The one-request no-op check: whether the server holds exactly what a replica whose knowledge has
    /// `digest` (``Knowledge/digest(account:)``) holds, and whose the token is. Nil when the server does not offer
    /// the check (the sync then runs the full exchange). The default implementation returns nil.
    func check(digest: String) async throws -> SyncCheck?
    /// Asks for the bodies of articles (`POST /v1/articles/bodies`): at most `ArticleBodiesRequest/maxIDs`
    /// distinct ids, each a valid article id. The answer is the server's claim: ``Replica/fetchBodies(_:using:)``
    /// checks every body against the digest the replica holds. The default implementation throws
    /// ``ReaderSyncError/transport(_:)``: the transport cannot fetch bodies.
    func fetchBodies(_ ids: [String]) async throws -> ArticleBodiesAnswer
}

extension SyncTransport {
    /// No check: the sync runs the full exchange.
    public func check(digest: String) async throws -> SyncCheck? { nil }

    /// Throws ``ReaderSyncError/transport(_:)``: this transport cannot fetch article bodies.
    public func fetchBodies(_ ids: [String]) async throws -> ArticleBodiesAnswer {
        throw ReaderSyncError.transport("this transport cannot fetch article bodies")
    }
}

/// The server's answer to a no-op check (`POST /v1/sync/check`).
public struct SyncCheck: Sendable, Equatable, Codable {
    /// True when the server holds exactly the changes the digest describes: there is nothing to push or pull.
    public var upToDate: Bool
    /// The token's account.
    public var account: String
    /// Its role.
    public var role: AccountRole

    /// Creates an answer.
    public init(upToDate: Bool, account: String, role: AccountRole) {
        self.upToDate = upToDate
        self.account = account
        self.role = role
    }
}

/// The body of a no-op check (`POST /v1/sync/check`): `{"digest":"<64 hex digits>"}`.
package struct SyncCheckRequest: Sendable, Equatable, Codable {
    /// ``Knowledge/digest(account:)`` of the client's knowledge.
    package var digest: String

    /// Creates a request.
    package init(digest: String) { self.digest = digest }

    /// Reads a check request, naming what is wrong.
    /// - Throws: ``ReaderSyncError/invalidInput(_:)``.
    package static func decode(json data: Data) throws -> SyncCheckRequest {
        guard let body = try? JSONDecoder().decode(SyncCheckRequest.self, from: data) else {
            throw ReaderSyncError.invalidInput("not a check request: expected {\"digest\": \"<64 hexadecimal digits>\"}")
        }
        guard body.digest.utf8.count == 64, body.digest.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else {
            throw ReaderSyncError.invalidInput("digest must be 64 lowercase hexadecimal digits (a SHA-256), got '\(Keys.printable(body.digest))'")
        }
        return body
    }
}

/// The role of an account on a sync server.
public enum AccountRole: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
    /// Reads, marks read, comments; article changes it pushes are refused.
    case reader
    /// A reader that may also publish and correct articles.
    case editor

    /// `reader` or `editor`.
    public var description: String { rawValue }
}

/// An account as the server describes it to its own token holder (`GET /v1/account`).
public struct RemoteAccount: Sendable, Equatable, Codable {
    /// The account name.
    public var name: String
    /// Its role.
    public var role: AccountRole

    /// Creates an account description.
    public init(name: String, role: AccountRole) {
        self.name = name
        self.role = role
    }
}

/// One change a receiver did not take, and why (the rest of its bundle was applied).
public struct RefusedChange: Sendable, Equatable, Codable {
    /// The replica that made it.
    public var origin: ReplicaID
    /// Its sequence number at that replica.
    public var seq: UInt64
    /// What it describes.
    public var entity: EntityKind
    /// Which one (article id, comment id, read state's article id).
    public var key: String
    /// Which field it writes.
    public var field: String
    /// Why it was refused, as one line.
    public var reason: String

    /// Creates a refusal.
    public init(origin: ReplicaID, seq: UInt64, entity: EntityKind, key: String, field: String, reason: String) {
        self.origin = origin
        self.seq = seq
        self.entity = entity
        self.key = key
        self.field = field
        self.reason = reason
    }

    /// A refusal of `change`.
    public init(_ change: Change, reason: String) {
        self.init(origin: change.origin, seq: change.seq, entity: change.entity, key: change.key,
                  field: change.field, reason: reason)
    }

    private enum CodingKeys: String, CodingKey { case origin, seq, entity, key, field, reason }

    /// Decodes the JSON form, where `entity` is `article`, `comment` or `readState`.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let name = try c.decode(String.self, forKey: .entity)
        guard let entity = EntityKind(name: name) else {
            throw DecodingError.dataCorruptedError(forKey: .entity, in: c, debugDescription: "unknown entity '\(name)'")
        }
        self.init(origin: try c.decode(ReplicaID.self, forKey: .origin), seq: try c.decode(UInt64.self, forKey: .seq),
                  entity: entity, key: try c.decode(String.self, forKey: .key),
                  field: try c.decode(String.self, forKey: .field), reason: try c.decode(String.self, forKey: .reason))
    }

    /// Encodes the JSON form.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(origin, forKey: .origin)
        try c.encode(seq, forKey: .seq)
        try c.encode(entity.description, forKey: .entity)
        try c.encode(key, forKey: .key)
        try c.encode(field, forKey: .field)
        try c.encode(reason, forKey: .reason)
    }
}

/// The answer to a push (`POST /v1/sync/push`): what the server now holds and what it did with the bundle.
public struct PushResponse: Sendable, Equatable, Codable {
    /// What the server holds after the push, as this account may see it.
    public var knowledge: Knowledge
    /// Changes the bundle carried.
    public var received: Int
    /// Changes that were new to the server and were merged.
    public var applied: Int
    /// Changes the server already held (a retried push is all duplicates).
    public var duplicates: Int
    /// Changes of other accounts' replicas, relayed by this one: not taken, they arrive from their authors.
    public var ignored: Int
    /// Changes the server refused (the client keeps them locally).
    public var refused: [RefusedChange]

    /// Creates a push answer.
    public init(knowledge: Knowledge, received: Int, applied: Int, duplicates: Int, ignored: Int, refused: [RefusedChange]) {
        self.knowledge = knowledge
        self.received = received
        self.applied = applied
        self.duplicates = duplicates
        self.ignored = ignored
        self.refused = refused
    }
}

/// One page of a pull: a bundle of what the client lacks, and whether it is the last.
public struct PullPage: Sendable, Equatable {
    /// The bundle (apply it with ``Replica/applyBundle(data:)-2m3a6``).
    public var bundle: Data
    /// Whether the bundle holds everything the client lacked; if not, pull again with the new knowledge.
    public var isComplete: Bool
    /// How many changes the server still held for the client after this page, when it said
    /// (`ReaderSync-Remaining` header): what a progress bar needs. Nil from servers that do not say.
    public var remainingChanges: Int?

    /// Creates a page.
    public init(bundle: Data, isComplete: Bool, remainingChanges: Int? = nil) {
        self.bundle = bundle
        self.isComplete = isComplete
        self.remainingChanges = remainingChanges
    }
}

/// The body of a pull request (`POST /v1/sync/pull`): the client's knowledge and the page size it wants.
package struct PullRequestBody: Sendable, Equatable, Codable {
    /// The largest page a client may ask for.
    package static let maxChangesLimit = 10_000
    /// The page size when the client does not ask for one.
    package static let defaultMaxChanges = 2_000

    /// What the client holds.
    package var knowledge: Knowledge
    /// At most this many changes in the page (1...``maxChangesLimit``); nil for the server's default.
    package var maxChanges: Int?

    /// Creates a pull request body.
    package init(knowledge: Knowledge, maxChanges: Int? = nil) {
        self.knowledge = knowledge
        self.maxChanges = maxChanges
    }

    /// Reads a pull request body, naming the field at fault.
    /// - Throws: ``ReaderSyncError/invalidInput(_:)``.
    package static func decode(json data: Data) throws -> PullRequestBody {
        // JSONDecoder reads `null` as an absent optional field, and says only "not valid JSON" for a number it cannot
        // represent (a seq of 2^64, -1, 1.5): both are checked on the parsed tree, naming the field. Unknown fields
        // are ignored, as JSONDecoder ignores them.
        let tree = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        if let object = tree as? [String: Any], object["maxChanges"] is NSNull {
            throw ReaderSyncError.invalidInput(
                "maxChanges must be an integer between 1 and \(maxChangesLimit), got null; leave it out for the server's default")
        }
        let body: PullRequestBody
        do {
            body = try JSONDecoder().decode(PullRequestBody.self, from: data)
        } catch let error as DecodingError {
            if let object = tree as? [String: Any] {
                for key in CodingKeys.allCases.map(\.stringValue) {
                    if let value = object[key], let problem = numberProblem(in: value, path: key) {
                        throw ReaderSyncError.invalidInput("not a pull request: \(problem)")
                    }
                }
            }
            throw ReaderSyncError.invalidInput("not a pull request: \(describe(error))")
        } catch {
            throw ReaderSyncError.invalidInput("not a pull request: the body is not JSON")
        }
        if let maxChanges = body.maxChanges, !(1...maxChangesLimit).contains(maxChanges) {
            throw ReaderSyncError.invalidInput("maxChanges must be between 1 and \(maxChangesLimit), got \(maxChanges)")
        }
        return body
    }

    private enum CodingKeys: String, CodingKey, CaseIterable { case knowledge, maxChanges }

    /// The first number in a parsed pull request that is not an integer from 0 to 2^63 − 1 (every number in
    /// one is a sequence number or a page size), as `path: what is wrong`; nil if there is none.
    private static func numberProblem(in value: Any, path: String) -> String? {
        switch value {
        case let object as [String: Any]:
            for key in object.keys.sorted() {
                if let value = object[key], let problem = numberProblem(in: value, path: path.isEmpty ? key : "\(path).\(key)") {
                    return problem
                }
            }
        case let array as [Any]:
            for (index, element) in array.enumerated() {
                if let problem = numberProblem(in: element, path: "\(path)[\(index)]") { return problem }
            }
        case let number as NSNumber:
            let type = String(cString: number.objCType)
            let place = path.isEmpty ? "top level" : path
            let range = "numbers in a pull request are integers from 0 to \(Knowledge.maxSeq)"
            // Booleans ("c") are left to JSONDecoder, which names a wrong type itself.
            if number is NSDecimalNumber || (["s", "i", "l", "q"].contains(type) && number.int64Value < 0)
                || (["L", "Q"].contains(type) && number.uint64Value > Knowledge.maxSeq) {
                return "\(place): \(number) is out of range: \(range)"
            }
            if type == "d" || type == "f" {
                // Written with a fraction or an exponent: fine if whole (2.0, 1e3), as JSON Schema's integer is.
                let value = number.doubleValue
                if value != value.rounded(.towardZero) { return "\(place): \(number) is not an integer: \(range)" }
                if value < 0 || value >= 0x1p63 { return "\(place): \(number) is out of range: \(range)" }
            }
        default:
            break
        }
        return nil
    }
}

/// A problem report (RFC 9457) as the sync server sends it with every error (`application/problem+json`).
package struct ProblemDetails: Sendable, Equatable, Codable {
    /// A URI naming the kind of problem, for example `urn:readersync:problem:unauthorized`.
    package var type: String
    /// A short summary of the kind of problem.
    package var title: String
    /// The HTTP status code.
    package var status: Int
    /// What went wrong this time, as one line.
    package var detail: String
    /// The comment at fault, for a refused comment change.
    package var comment: String?

    /// Creates a problem report.
    package init(type: String, title: String, status: Int, detail: String, comment: String? = nil) {
        self.type = type
        self.title = title
        self.status = status
        self.detail = detail
        self.comment = comment
    }
}

/// The media types and header names of the HTTP sync protocol (`Schemas/openapi.yaml`).
package enum SyncHTTP {
    /// A bundle body.
    package static let bundleMediaType = "application/vnd.readersync.bundle"
    /// A JSON body.
    package static let jsonMediaType = "application/json"
    /// An error body.
    package static let problemMediaType = "application/problem+json"
    /// The pull response header that says whether the page is the last (`true` or `false`).
    package static let completeHeader = "ReaderSync-Complete"
    /// The pull response header with the number of changes the server still holds for the client after the page.
    package static let remainingHeader = "ReaderSync-Remaining"
    /// The prefix of every problem type URI.
    package static let problemTypePrefix = "urn:readersync:problem:"

    /// The bare media type of a `Content-Type` value: lowercased, parameters dropped.
    package static func mediaType(_ contentType: String?) -> String? {
        guard let contentType else { return nil }
        let bare = contentType.split(separator: ";", maxSplits: 1).first.map(String.init) ?? ""
        let trimmed = bare.trimmingCharacters(in: .whitespaces).lowercased()
        return trimmed.isEmpty ? nil : trimmed
    }
}
