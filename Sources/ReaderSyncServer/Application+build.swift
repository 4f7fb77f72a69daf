public import Hummingbird
public import Logging
public import ReaderSync

/// Settings of a sync server.
public struct ServerConfiguration: Sendable, Equatable {
    /// The address to bind; `127.0.0.1` serves this machine only.
    public var host: String
    /// The port; 0 picks a free one (``buildApplication(configuration:store:logger:onServerRunning:)`` reports it).
    public var port: Int
    /// The largest request body accepted (413 beyond).
    public var maxBodyBytes: Int
    /// The pull page size when a client does not ask for one.
    public var defaultPageSize: Int

    /// Creates a configuration; the defaults bind 127.0.0.1:8080 and accept bodies up to 32 MiB.
    public init(host: String = "127.0.0.1", port: Int = 8080, maxBodyBytes: Int = 32 << 20,
                defaultPageSize: Int = PullRequestBody.defaultMaxChanges) {
        self.host = host
        self.port = port
        self.maxBodyBytes = maxBodyBytes
        self.defaultPageSize = defaultPageSize
    }
}

/// Builds the sync server: the one application that `readersync-server serve` runs and the tests test.
///
/// ```swift
/// let store = try SQLiteServerStore(path: "server.db")
/// let app = buildApplication(configuration: ServerConfiguration(port: 0), store: store, logger: logger) { host, port in
///     print("listening on http://\(host):\(port)")
/// }
/// try await app.runService()   // until SIGINT or SIGTERM; in-flight requests finish first
/// ```
///
/// - Parameters:
///   - store: where accounts and data live; the HTTP layer holds no other state.
///   - onServerRunning: called once the socket is bound, with the host and the actual port.
public func buildApplication(configuration: ServerConfiguration, store: any ServerStore, logger: Logger,
                             onServerRunning: @escaping @Sendable (_ host: String, _ port: Int) async -> Void = { _, _ in })
    -> some ApplicationProtocol {
    let router = Router(context: ServerRequestContext.self)
    router.add(middleware: ProblemMiddleware())
    SyncController(store: store, configuration: configuration).addRoutes(to: router)
    let host = configuration.host
    return Application(
        router: router,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "readersync"),
        onServerRunning: { channel in
            await onServerRunning(host, channel.localAddress?.port ?? configuration.port)
        },
        logger: logger)
}
