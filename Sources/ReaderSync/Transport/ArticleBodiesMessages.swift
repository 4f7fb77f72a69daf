public import Foundation

/// The body of a request for article bodies (`POST /v1/articles/bodies`): `{"ids": ["<article id>", ...]}`.
///
/// A device asks the server for the bodies it evicted (or received by reference) with
/// ``Replica/fetchBodies(_:using:)``; articles are shared, so any account may ask for any article's body.
package struct ArticleBodiesRequest: Sendable, Equatable, Codable {
    /// The most ids one request may carry.
    package static let maxIDs = 200

    /// The article ids, 1…``maxIDs`` of them, each a valid article id (``Keys/problem(withID:)``). A repeated id is
    /// answered once.
    package var ids: [String]

    /// Creates a request.
    package init(ids: [String]) { self.ids = ids }

    /// Reads a request, naming what is wrong: not the expected JSON object, no ids, more than ``maxIDs``, or an id
    /// that is not a valid article id. Unknown fields are ignored.
    /// - Throws: ``ReaderSyncError/invalidInput(_:)``.
    package static func decode(json data: Data) throws -> ArticleBodiesRequest {
        let body: ArticleBodiesRequest
        do {
            body = try JSONDecoder().decode(ArticleBodiesRequest.self, from: data)
        } catch let error as DecodingError {
            throw ReaderSyncError.invalidInput(
                "not a bodies request (\(describe(error))): expected {\"ids\": [\"<article id>\", ...]} with 1 to \(maxIDs) ids")
        } catch {
            throw ReaderSyncError.invalidInput("not a bodies request: the body is not JSON")
        }
        guard !body.ids.isEmpty else {
            throw ReaderSyncError.invalidInput("ids is empty: ask for 1 to \(maxIDs) article ids")
        }
        guard body.ids.count <= maxIDs else {
            throw ReaderSyncError.invalidInput("ids holds \(body.ids.count) ids: ask for at most \(maxIDs) per request")
        }
        for (index, id) in body.ids.enumerated() {
            if let problem = Keys.problem(withID: id) {
                throw ReaderSyncError.invalidInput("ids[\(index)] '\(Keys.printable(id))' is not an article id: it \(problem)")
            }
        }
        return body
    }
}

/// The answer to a request for article bodies (`POST /v1/articles/bodies`).
///
/// Every asked id is in exactly one of the three lists. The receiver checks each body against the digest it
/// holds for the article (``Replica/fillBodies(_:)-13je5``): the `sha256` sent is a claim, never trusted on its own.
public struct ArticleBodiesAnswer: Sendable, Equatable, Codable {
    /// The bodies the server holds, in the order asked.
    public var bodies: [ArticleBody]
    /// Ids the server holds no body for (unknown articles, or articles it holds without a body).
    public var missing: [String]
    /// Ids the server did not look at because the answer reached its size limit (about 8 MiB of body text on the
    /// reference server; at least one body is always answered): ask for them again. Empty when the answer is
    /// complete; an absent field reads as empty.
    public var truncated: [String]

    /// Creates an answer.
    public init(bodies: [ArticleBody] = [], missing: [String] = [], truncated: [String] = []) {
        self.bodies = bodies
        self.missing = missing
        self.truncated = truncated
    }

    private enum CodingKeys: String, CodingKey { case bodies, missing, truncated }

    /// Decodes the JSON form; `truncated` may be left out.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        bodies = try c.decode([ArticleBody].self, forKey: .bodies)
        missing = try c.decode([String].self, forKey: .missing)
        truncated = try c.decodeIfPresent([String].self, forKey: .truncated) ?? []
    }

    /// Encodes the JSON form (every field, `truncated` even when empty).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(bodies, forKey: .bodies)
        try c.encode(missing, forKey: .missing)
        try c.encode(truncated, forKey: .truncated)
    }
}
