import Foundation
public import Hummingbird
import HummingbirdCore
import HummingbirdTLS
public import Logging
import NIOCore
import NIOSSL
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
    /// Timeouts and limits of connections.
    public var connections: ConnectionLimits
    /// Per-account limits on pushes (429 and 413 beyond).
    public var pushLimits: PushLimits
    /// Serve HTTPS with this certificate and key; nil serves plain HTTP.
    public var tls: TLSFiles?

    /// Creates a configuration; the defaults bind 127.0.0.1:8080, accept bodies up to 32 MiB, and use the
    /// default ``ConnectionLimits`` and ``PushLimits``; a pull without a page size gets 2,000 changes.
    public init(host: String = "127.0.0.1", port: Int = 8080, maxBodyBytes: Int = 32 << 20,
                defaultPageSize: Int = 2_000,
                connections: ConnectionLimits = ConnectionLimits(), pushLimits: PushLimits = PushLimits(),
                tls: TLSFiles? = nil) {
        self.host = host
        self.port = port
        self.maxBodyBytes = maxBodyBytes
        self.defaultPageSize = defaultPageSize
        self.connections = connections
        self.pushLimits = pushLimits
        self.tls = tls
    }

    /// `https` with ``tls``, else `http`.
    public var scheme: String { tls == nil ? "http" : "https" }
}

/// Timeouts and limits that keep idle, slow or half-sent connections from holding the server's file descriptors.
///
/// A timeout runs only while the server waits for the client; a request the server is still working on is never
/// cut short.
public struct ConnectionLimits: Sendable, Equatable {
    /// How long a request head (request line and headers) may take to arrive, from its first byte (408 beyond).
    public var headerTimeout: Duration
    /// How long a request body may stall, with no new bytes, before the request is answered 408 and the
    /// connection closed.
    public var bodyTimeout: Duration
    /// How long a connection with no request in progress (new, or kept alive after a response) stays open.
    public var idleTimeout: Duration
    /// At most this many connections are open at once; further ones wait in the listen backlog until one closes.
    public var maxConnections: Int
    /// The largest request head accepted, in bytes (431 beyond).
    public var maxHeaderBytes: Int

    /// The defaults: 10 s for the head, 10 s of body silence, 10 s idle, 10,000 connections, 16 KiB of headers.
    public init(headerTimeout: Duration = .seconds(10), bodyTimeout: Duration = .seconds(10),
                idleTimeout: Duration = .seconds(10), maxConnections: Int = 10_000, maxHeaderBytes: Int = 16 << 10) {
        self.headerTimeout = headerTimeout
        self.bodyTimeout = bodyTimeout
        self.idleTimeout = idleTimeout
        self.maxConnections = maxConnections
        self.maxHeaderBytes = maxHeaderBytes
    }
}

/// The PEM files of a TLS server: its certificate chain (leaf first) and its private key.
public struct TLSFiles: Sendable, Equatable {
    /// The certificate chain file (PEM).
    public var certificateChain: String
    /// The private key file (PEM, unencrypted).
    public var privateKey: String

    /// Creates the pair of paths.
    public init(certificateChain: String, privateKey: String) {
        self.certificateChain = certificateChain
        self.privateKey = privateKey
    }

    /// Reads both files into a server TLS configuration (TLS 1.2 and later), checking that they make a usable
    /// context (the key matches the certificate).
    ///
    /// - Throws: ``ServerSetupError`` naming the file at fault.
    func serverConfiguration() throws -> TLSConfiguration {
        for (path, what) in [(certificateChain, "TLS certificate"), (privateKey, "TLS private key")] {
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw ServerSetupError("cannot read the \(what) \(path): no such readable file")
            }
        }
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificateChain)
        } catch {
            throw ServerSetupError("\(certificateChain) is not a PEM certificate chain (\(error))")
        }
        guard !chain.isEmpty else { throw ServerSetupError("\(certificateChain) holds no PEM certificate") }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: privateKey, format: .pem)
        } catch {
            throw ServerSetupError("\(privateKey) is not an unencrypted PEM private key (\(error))")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) },
                                                                     privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        do {
            _ = try NIOSSLContext(configuration: configuration)
        } catch {
            throw ServerSetupError("the TLS key \(privateKey) does not fit the certificate \(certificateChain) (\(error))")
        }
        return configuration
    }
}

/// A server configuration that cannot be used (an unreadable TLS file, a key that does not fit its certificate).
public struct ServerSetupError: Error, Sendable, Equatable, CustomStringConvertible {
    /// One line naming what is wrong.
    public var message: String

    /// Creates the error.
    public init(_ message: String) { self.message = message }

    /// The message.
    public var description: String { message }
}

/// Builds the sync server: the one application that `readersync-server serve` runs and the tests test.
///
/// ```swift
/// let store = try SQLiteServerStore(path: "server.db")
/// let app = try buildApplication(configuration: ServerConfiguration(port: 0), store: store, logger: logger) { host, port in
///     print("listening on http://\(host):\(port)")
/// }
/// try await app.runService()   // until SIGINT or SIGTERM; in-flight requests finish first
/// ```
///
/// - Parameters:
///   - store: where accounts and data live; the HTTP layer holds no other state.
///   - onServerRunning: called once the socket is bound, with the host and the actual port.
/// - Throws: ``ServerSetupError`` when the TLS files cannot be used.
public func buildApplication(configuration: ServerConfiguration, store: any ServerStore, logger: Logger,
                             onServerRunning: @escaping @Sendable (_ host: String, _ port: Int) async -> Void = { _, _ in })
    throws -> some ApplicationProtocol {
    let router = Router(context: ServerRequestContext.self)
    router.add(middleware: ProblemMiddleware(allowedMethods: SyncController.allowedMethods))
    SyncController(store: store, configuration: configuration).addRoutes(to: router)
    let host = configuration.host
    let limits = configuration.connections
    let server: HTTPServerBuilder
    if let tls = configuration.tls {
        let tlsConfiguration = try tls.serverConfiguration()
        server = HTTPServerBuilder { responder in
            try TLSChannel(GuardedHTTP1Channel(responder: responder, limits: limits, secure: true),
                           tlsConfiguration: tlsConfiguration)
        }
    } else {
        server = HTTPServerBuilder { responder in
            GuardedHTTP1Channel(responder: responder, limits: limits, secure: false)
        }
    }
    return Application(
        router: router,
        server: server,
        // A listen backlog of 1,024 (Hummingbird's default is 256) absorbs bursts of new connections while the event
        // loops are busy, instead of dropping their SYNs (each drop costs the client a 1 s retransmit).
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "readersync",
                             backlog: 1_024,
                             availableConnectionsDelegate: MaximumAvailableConnections(limits.maxConnections, logger: logger)),
        onServerRunning: { channel in
            await onServerRunning(host, channel.localAddress?.port ?? configuration.port)
        },
        logger: logger)
}
