import Foundation
import Hummingbird
import Logging

/// The request context of the sync server: Hummingbird's core context plus the authenticated account.
struct ServerRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    /// Set by ``BearerAuthMiddleware`` on authenticated routes.
    var account: ServerAccount?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        account = nil
    }

    /// The authenticated account; routes behind ``BearerAuthMiddleware`` always have one.
    func requireAccount() throws -> ServerAccount {
        guard let account else {
            throw ProblemError.unauthorized("this route needs a bearer token", invalidToken: false)
        }
        return account
    }
}

/// Authenticates `Authorization: Bearer <token>` against the store on every request (no cache, so a revoked
/// token stops working at once), or answers 401.
struct BearerAuthMiddleware: RouterMiddleware {
    typealias Context = ServerRequestContext
    let store: any ServerStore

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else {
            throw ProblemError.unauthorized("no bearer token: send Authorization: Bearer <token>", invalidToken: false)
        }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw ProblemError.unauthorized("the Authorization header is not 'Bearer <token>'", invalidToken: false)
        }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        guard let account = try await store.authenticate(token: token) else {
            throw ProblemError.unauthorized("the token is unknown or revoked", invalidToken: true)
        }
        var context = context
        context.account = account
        context.logger[metadataKey: "account"] = .string(account.name)
        return try await next(request, context)
    }
}
