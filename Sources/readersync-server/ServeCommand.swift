import ArgumentParser
import Foundation
import Hummingbird
import Logging
import ReaderSync
import ReaderSyncServer

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve HTTP(S) sync until SIGINT or SIGTERM (requests in flight finish first).",
        discussion: """
            Prints 'listening on http://HOST:PORT' (https with --tls-cert and --tls-key) on stdout once the socket is \
            bound; logs go to stderr. Creates the store if --db names no file yet. Limits given as 0 are off.
            """)
    @OptionGroup var store: StoreOptions
    @Option(help: "The address to bind.") var host = "127.0.0.1"
    @Option(help: "The port; 0 picks a free one and prints it.") var port = 8080
    @Option(name: .customLong("max-body-bytes"), help: "The largest request body accepted (413 beyond).")
    var maxBodyBytes = 32 << 20
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = ProcessInfo.processInfo.environment["LOG_LEVEL"] ?? "info"

    @Option(name: .customLong("header-timeout"), help: ArgumentHelp(
        "Seconds a request head may take to arrive, from its first byte (408 beyond).", valueName: "seconds"))
    var headerTimeout = 10.0
    @Option(name: .customLong("body-timeout"), help: ArgumentHelp(
        "Seconds a request body may stall with no new bytes (408 beyond).", valueName: "seconds"))
    var bodyTimeout = 10.0
    @Option(name: .customLong("idle-timeout"), help: ArgumentHelp(
        "Seconds a connection with no request in progress stays open.", valueName: "seconds"))
    var idleTimeout = 10.0
    @Option(name: .customLong("max-connections"), help: ArgumentHelp(
        "Connections open at once; more wait until one closes (capped by the open-file limit).", valueName: "n"))
    var maxConnections = ConnectionLimits().maxConnections
    @Option(name: .customLong("max-header-bytes"), help: ArgumentHelp(
        "The largest request head accepted (431 beyond).", valueName: "bytes"))
    var maxHeaderBytes = ConnectionLimits().maxHeaderBytes

    @Option(name: .customLong("max-changes-per-push"), help: ArgumentHelp(
        "New changes one push may carry, per account (413 beyond; 0: no limit).", valueName: "n"))
    var maxChangesPerPush = PushLimits().maxChangesPerPush ?? 0
    @Option(name: .customLong("max-changes-per-minute"), help: ArgumentHelp(
        "New changes an account may push in any 60 s, across every server sharing the store (429 beyond; 0: no limit).",
        valueName: "n"))
    var maxChangesPerMinute = PushLimits().maxChangesPerMinute ?? 0
    @Option(name: .customLong("max-comment-length"), help: ArgumentHelp(
        "Characters a pushed comment may have (413 beyond; 0: no limit).", valueName: "n"))
    var maxCommentLength = PushLimits().maxCommentLength ?? 0

    @Option(name: .customLong("tls-cert"), help: ArgumentHelp(
        "Serve HTTPS with this certificate chain (PEM, leaf first); needs --tls-key.", valueName: "path"))
    var tlsCert: String?
    @Option(name: .customLong("tls-key"), help: ArgumentHelp(
        "The private key of --tls-cert (PEM, unencrypted).", valueName: "path"))
    var tlsKey: String?

    func validate() throws {
        guard (0...65_535).contains(port) else { throw ValidationError("--port must be between 0 and 65535") }
        guard maxBodyBytes > 0 else { throw ValidationError("--max-body-bytes must be positive") }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        for (name, value) in [("--header-timeout", headerTimeout), ("--body-timeout", bodyTimeout), ("--idle-timeout", idleTimeout)] {
            guard value.isFinite, value > 0, value <= 86_400 else {
                throw ValidationError("\(name) must be a number of seconds above 0 and at most 86400, got \(value)")
            }
        }
        guard maxConnections > 0 else { throw ValidationError("--max-connections must be positive") }
        guard maxHeaderBytes >= 1024 else { throw ValidationError("--max-header-bytes must be at least 1024") }
        for (name, value) in [("--max-changes-per-push", maxChangesPerPush), ("--max-changes-per-minute", maxChangesPerMinute),
                              ("--max-comment-length", maxCommentLength)] {
            guard value >= 0 else { throw ValidationError("\(name) must be 0 (no limit) or positive, got \(value)") }
        }
        guard (tlsCert == nil) == (tlsKey == nil) else {
            throw ValidationError("--tls-cert and --tls-key go together: give both to serve HTTPS, or neither")
        }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "readersync-server")
        logger.logLevel = level
        try await reporting {
            let opened = try store.open(createIfMissing: true)
            let connections = ConnectionLimits(
                headerTimeout: .seconds(headerTimeout), bodyTimeout: .seconds(bodyTimeout), idleTimeout: .seconds(idleTimeout),
                maxConnections: FileLimit.connections(wanted: maxConnections, logger: logger), maxHeaderBytes: maxHeaderBytes)
            let pushLimits = PushLimits(maxChangesPerPush: maxChangesPerPush == 0 ? nil : maxChangesPerPush,
                                        maxChangesPerMinute: maxChangesPerMinute == 0 ? nil : maxChangesPerMinute,
                                        maxCommentLength: maxCommentLength == 0 ? nil : maxCommentLength)
            let tls = tlsCert.flatMap { cert in tlsKey.map { TLSFiles(certificateChain: cert, privateKey: $0) } }
            let configuration = ServerConfiguration(host: host, port: port, maxBodyBytes: maxBodyBytes,
                                                    connections: connections, pushLimits: pushLimits, tls: tls)
            let scheme = configuration.scheme
            let app = try buildApplication(configuration: configuration, store: opened, logger: logger) { host, port in
                say("listening on \(scheme)://\(host):\(port)")
            }
            logger.info("serving", metadata: [
                "db": "\(store.path)", "host": "\(host)", "port": "\(port)", "tls": "\(tls != nil)",
                "max_connections": "\(connections.maxConnections)",
                "timeouts_s": "header \(headerTimeout), body \(bodyTimeout), idle \(idleTimeout)",
                "push_limits": "\(maxChangesPerPush)/push, \(maxChangesPerMinute)/min, \(maxCommentLength) chars/comment (0: off)",
            ])
            do {
                try await app.runService()
            } catch {
                throw fail("the server stopped: \(error)")
            }
            logger.info("stopped")
        }
    }
}

/// The process's open-file limit, which bounds how many connections the server can hold.
enum FileLimit {
    /// Descriptors kept for the store, logs and the listening socket.
    static let reserve = 64

    /// Raises the soft open-file limit as far as `wanted` connections need (up to the hard limit) and returns how
    /// many connections fit under it; logs a warning when that is fewer than wanted.
    static func connections(wanted: Int, logger: Logger) -> Int {
        #if os(Linux)
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        #else
        let resource = RLIMIT_NOFILE
        #endif
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0 else { return wanted }
        let needed = rlim_t(wanted + reserve)
        if limit.rlim_cur < needed {
            var raised = limit
            raised.rlim_cur = min(needed, limit.rlim_max)
            if setrlimit(resource, &raised) == 0 { limit = raised }
        }
        let fitting = max(1, Int(clamping: limit.rlim_cur) - reserve)
        if fitting < wanted {
            logger.warning("the open-file limit allows only \(fitting) connections; raise it (ulimit -n) to serve \(wanted)")
        }
        return min(wanted, fitting)
    }
}

struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Publish articles to every account: the page shape ({\"articles\": [...]}), a JSON array, or JSON Lines.")
    @OptionGroup var store: StoreOptions
    @Argument(help: "The file to import.") var file: String

    func run() async throws {
        try await reporting {
            let articles = try ArticleImport.parse(contentsOf: URL(fileURLWithPath: file))
            let summary = try await store.open(createIfMissing: true).importArticles(articles)
            say("imported \(articles.count) articles: \(summary.inserted) new, \(summary.updated) updated, \(summary.unchanged) unchanged")
        }
    }
}
