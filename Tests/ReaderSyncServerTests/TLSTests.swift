import AsyncHTTPClient
import Foundation
import NIOCore
import NIOSSL
import ReaderSync
import ReaderSyncServer
import Testing

/// A throwaway certificate authority and a server certificate for 127.0.0.1 that it signs, made with `openssl` in
/// a test's temporary directory (nothing is committed).
struct TestCertificates {
    /// The authority's certificate: what a client must trust.
    let authority: String
    /// The server's certificate chain and key: what `serve --tls-cert --tls-key` takes.
    let certificate: String
    let key: String
    /// The authority's key: a key that does not fit `certificate`.
    let otherKey: String

    static let openssl: String? = {
        let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        return dirs.map { "\($0)/openssl" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    init(in directory: TemporaryDirectory) async throws {
        let openssl = try #require(Self.openssl, "openssl is not installed")
        authority = directory.path("ca.pem")
        otherKey = directory.path("ca.key")
        certificate = directory.path("server.pem")
        key = directory.path("server.key")
        let request = directory.path("server.csr")
        let extensions = directory.path("server.ext")
        try """
            subjectAltName = IP:127.0.0.1, DNS:localhost
            basicConstraints = critical, CA:FALSE
            keyUsage = critical, digitalSignature
            extendedKeyUsage = serverAuth
            """.write(toFile: extensions, atomically: true, encoding: .utf8)
        let curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        for arguments in [
            ["req", "-x509"] + curve + ["-keyout", otherKey, "-out", authority, "-days", "2", "-subj", "/CN=ReaderSync test authority"],
            ["req"] + curve + ["-keyout", key, "-out", request, "-subj", "/CN=127.0.0.1"],
            ["x509", "-req", "-in", request, "-CA", authority, "-CAkey", otherKey, "-CAcreateserial", "-out", certificate,
             "-days", "2", "-extfile", extensions],
        ] {
            let result = try await ClientProcess.run(arguments, executable: URL(fileURLWithPath: openssl))
            try #require(result.status == 0, "openssl \(arguments.joined(separator: " ")): \(result.stderr)")
        }
    }
}

/// Whether this process may run a command in its own mount namespace (root, and `unshare` works here): then a
/// test can make the system trust store hold the test authority for one command, without touching the machine.
let canTrustInNamespace: Bool = {
    guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare"),
          FileManager.default.fileExists(atPath: "/etc/ssl/certs/ca-certificates.crt") else { return false }
    let probe = Process()
    probe.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
    probe.arguments = ["-m", "true"]
    probe.standardOutput = FileHandle.nullDevice
    probe.standardError = FileHandle.nullDevice
    guard (try? probe.run()) != nil else { return false }
    probe.waitUntilExit()
    return probe.terminationStatus == 0
}()

@Suite("TLS", .enabled(if: TestCertificates.openssl != nil, "needs openssl to make a throwaway certificate"))
struct TLSTests {
    /// The sync protocol over AsyncHTTPClient, trusting `authority` (PEM) only when given.
    static func transport(_ client: HTTPClient, url: String, token: String) -> HTTPSyncTransport {
        HTTPSyncTransport(serverDescription: url, token: token) { request in
            var outgoing = HTTPClientRequest(url: url + "/" + request.path)
            outgoing.method = .init(rawValue: request.method)
            for (name, value) in request.headers { outgoing.headers.add(name: name, value: value) }
            if let body = request.body { outgoing.body = .bytes(ByteBuffer(bytes: body)) }
            let response = try await client.execute(outgoing, timeout: .seconds(30))
            let body = try await response.body.collect(upTo: 64 << 20)
            var headers: [String: String] = [:]
            for header in response.headers { headers[header.name] = header.value }
            return SyncHTTPResponse(status: Int(response.status.code), headers: headers, body: Data(body.readableBytesView))
        }
    }

    static func client(trusting authority: String?) throws -> HTTPClient {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let authority { tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(authority)) }
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup,
                          configuration: HTTPClient.Configuration(tlsConfiguration: tls))
    }

    @Test("The server speaks HTTPS; a client that trusts its certificate authority syncs, one that does not is refused")
    func httpsInProcess() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let certificates = try await TestCertificates(in: directory)
        let fixture = try await Fixture()
        let configuration = ServerConfiguration(tls: TLSFiles(certificateChain: certificates.certificate,
                                                              privateKey: certificates.key))
        try await withLiveServer(store: fixture.store, configuration: configuration) { url in
            #expect(url.hasPrefix("https://127.0.0.1:"))
            let trusting = try Self.client(trusting: certificates.authority)
            let untrusting = try Self.client(trusting: nil)
            do {
                let device = try Replica.inMemory(account: "alice")
                let first = try await device.sync(using: Self.transport(trusting, url: url, token: fixture.alice.token))
                #expect(first.pulled.changes == 3)
                try await device.addComment(to: "a1", body: "over TLS")
                let second = try await device.sync(using: Self.transport(trusting, url: url, token: fixture.alice.token))
                #expect(second.pushed.applied == 2)
                #expect(try await fixture.store.canonicalDump(account: "alice") == (try device.canonicalDump()))

                let refused = await #expect(throws: ReaderSyncError.self) {
                    try await device.sync(using: Self.transport(untrusting, url: url, token: fixture.alice.token))
                }
                #expect(refused?.message.contains("cannot reach \(url)") == true, "\(String(describing: refused))")
            } catch {
                try await trusting.shutdown()
                try await untrusting.shutdown()
                throw error
            }
            try await trusting.shutdown()
            try await untrusting.shutdown()

            // Plain HTTP to the TLS port gets no HTTP answer.
            let port = try #require(URL(string: url)?.port)
            let plain = try await offThread {
                let socket = try RawSocket(port: port)
                try socket.send("GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                return socket.readUntilClosed(timeout: 30)
            }
            #expect(plain.closed)
            #expect(!String(decoding: plain.data, as: UTF8.self).hasPrefix("HTTP/1.1 200"))
        }
    }

    @Test("The readersync client syncs with a TLS serve process once the system trusts its authority; before, it says why",
          .enabled(if: canTrustInNamespace, "needs root and unshare, to trust the test authority in a mount namespace"))
    func readersyncClientOverTLS() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let certificates = try await TestCertificates(in: directory)
        let db = directory.path("server.db")
        let token: String
        do {
            let store = try SQLiteServerStore(path: db)
            token = try await store.addAccount(name: "alice", role: .reader).token
            _ = try await store.importArticles(articles(3))
        }
        let device = directory.path("device.db")
        _ = try await ClientProcess.run(["init", "--db", device, "--account", "alice"])
        try await withServerProcess(db: db, arguments: ["--tls-cert", certificates.certificate, "--tls-key", certificates.key]) { server in
            #expect(server.url.hasPrefix("https://127.0.0.1:"))
            let sync = ["sync", server.url, "--db", device, "--token", token, "--quiet"]

            // The machine does not trust the test authority: the client stops with one line saying so.
            let untrusted = try await ClientProcess.run(sync)
            #expect(untrusted.status == 1)
            #expect(untrusted.stderr.split(separator: "\n").count == 1, "\(untrusted.stderr)")
            #expect(untrusted.stderr.hasPrefix("readersync: error: cannot reach \(server.url): "), "\(untrusted.stderr)")

            // In a mount namespace of its own, the system bundle is the test authority: URLSession (libcurl) trusts it.
            let script = #"mount --bind "$0" /etc/ssl/certs/ca-certificates.crt && exec "$@""#
            let trusted = try await ClientProcess.run(
                ["-m", "sh", "-c", script, certificates.authority, try ClientProcess.binary().path] + sync,
                executable: URL(fileURLWithPath: "/usr/bin/unshare"))
            #expect(trusted.status == 0, "\(trusted.stderr)")
            #expect(trusted.stdout.contains("received 3 changes"), "\(trusted.stdout)")
        }
        let store = try SQLiteServerStore(path: db, createIfMissing: false)
        let replica = try Replica.open(at: device)
        #expect(try await store.canonicalDump(account: "alice") == (try replica.canonicalDump()))
    }

    @Test("serve refuses TLS files it cannot use, in one line naming the file")
    func unusableFiles() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanUp() }
        let certificates = try await TestCertificates(in: directory)
        let db = directory.path("server.db")
        let missing = directory.path("missing.pem")

        let noFile = try await ExecutableTests.run(["serve", "--db", db, "--port", "0", "--tls-cert", missing, "--tls-key", certificates.key])
        #expect(noFile.status == 1)
        #expect(noFile.stderr == "readersync-server: error: cannot read the TLS certificate \(missing): no such readable file\n")

        let notACertificate = try await ExecutableTests.run(["serve", "--db", db, "--port", "0", "--tls-cert", certificates.key,
                                                             "--tls-key", certificates.key])
        #expect(notACertificate.status == 1)
        #expect(notACertificate.stderr.hasPrefix("readersync-server: error: \(certificates.key) is not a PEM certificate chain"))

        let wrongKey = try await ExecutableTests.run(["serve", "--db", db, "--port", "0", "--tls-cert", certificates.certificate,
                                                      "--tls-key", certificates.otherKey])
        #expect(wrongKey.status == 1)
        #expect(wrongKey.stderr.hasPrefix("readersync-server: error: the TLS key \(certificates.otherKey) does not fit the certificate \(certificates.certificate)"),
                "\(wrongKey.stderr)")
        #expect(wrongKey.stderr.split(separator: "\n").count == 1)

        let halfPair = try await ExecutableTests.run(["serve", "--db", db, "--port", "0", "--tls-cert", certificates.certificate])
        #expect(halfPair.status == 64)
        #expect(halfPair.stderr.contains("--tls-cert and --tls-key go together"))
    }
}
