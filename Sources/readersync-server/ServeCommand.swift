import ArgumentParser
import Foundation
import Hummingbird
import Logging
import ReaderSync
import ReaderSyncServer

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve HTTP sync until SIGINT or SIGTERM (requests in flight finish first).",
        discussion: "Prints 'listening on http://HOST:PORT' on stdout once the socket is bound; logs go to stderr.")
    @OptionGroup var store: StoreOptions
    @Option(help: "The address to bind.") var host = "127.0.0.1"
    @Option(help: "The port; 0 picks a free one and prints it.") var port = 8080
    @Option(name: .customLong("max-body-bytes"), help: "The largest request body accepted.")
    var maxBodyBytes = 32 << 20
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = ProcessInfo.processInfo.environment["LOG_LEVEL"] ?? "info"

    func validate() throws {
        guard (0...65_535).contains(port) else { throw ValidationError("--port must be between 0 and 65535") }
        guard maxBodyBytes > 0 else { throw ValidationError("--max-body-bytes must be positive") }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
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
            let opened = try store.open()
            let configuration = ServerConfiguration(host: host, port: port, maxBodyBytes: maxBodyBytes)
            let app = buildApplication(configuration: configuration, store: opened, logger: logger) { host, port in
                say("listening on http://\(host):\(port)")
            }
            logger.info("serving", metadata: ["db": "\(store.path)", "host": "\(host)", "port": "\(port)"])
            do {
                try await app.runService()
            } catch {
                throw fail("the server stopped: \(error)")
            }
            logger.info("stopped")
        }
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
            let summary = try await store.open().importArticles(articles)
            say("imported \(articles.count) articles: \(summary.inserted) new, \(summary.updated) updated, \(summary.unchanged) unchanged")
        }
    }
}
