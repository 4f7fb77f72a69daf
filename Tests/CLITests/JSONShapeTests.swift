import Foundation
@testable import ReaderSync
import Testing

/// Every `--json` output against its schema in `Schemas/cli-json/`, and the conventions every shape follows.
@Suite("readersync: --json shapes")
final class JSONShapeTests {
    let box: Sandbox
    let schemas: JSONSchemaValidator
    static let schemaDirectory = CLIPaths.packageRoot.appendingPathComponent("Schemas/cli-json")

    init() throws {
        box = try Sandbox()
        schemas = try JSONSchemaValidator(directory: Self.schemaDirectory)
    }

    /// Runs a command, checks it succeeded, validates its stdout against `schema`, and returns the parsed value.
    @discardableResult
    private func check(_ schema: String, _ args: String..., sourceLocation: SourceLocation = #_sourceLocation) throws -> JSONValue {
        let result = try box.start(args).finish()
        #expect(result.status == 0, "\(result)", sourceLocation: sourceLocation)
        let value = try parseJSONValue(result.stdoutData)
        let errors = schemas.validate(value, against: schema)
        #expect(errors.isEmpty, "\(args.joined(separator: " ")) does not match \(schema):\n\(errors.joined(separator: "\n"))",
                sourceLocation: sourceLocation)
        #expect(objectsWithUnsortedKeys(result.stdout).isEmpty, "keys are sorted", sourceLocation: sourceLocation)
        checked.insert(schema)
        return value
    }

    private var checked: Set<String> = []

    @Test("the schema files use only keywords the test validator checks, and Schemas/cli-json.md documents each")
    func schemaFiles() throws {
        #expect(schemas.unsupportedKeywords().isEmpty, "\(schemas.unsupportedKeywords())")
        let doc = try String(contentsOf: CLIPaths.packageRoot.appendingPathComponent("Schemas/cli-json.md"), encoding: .utf8)
        for name in schemas.documents.keys.sorted() {
            #expect(doc.contains("cli-json/\(name)"), "cli-json.md links \(name)")
            if case .object(let object)? = schemas.documents[name], case .object(let properties)? = object["properties"],
               case .object(let format)? = properties["format"], case .string(let constant)? = format["const"] {
                #expect(doc.contains("`\(constant)`"), "cli-json.md names the format \(constant)")
            }
        }
    }

    @Test("every --json output matches its documented schema")
    func everyShape() throws {
        // Two devices of alice and bob's tablet, with comments (a reply, an edit, a deletion) and read state.
        try box.replicaWithFixture("phone.db")
        try box.ok("init", "--db", "laptop.db", "--account", "alice")
        try box.ok("read", "--db", "phone.db", FixtureIDs.main)
        try box.ok("progress", "--db", "phone.db", FixtureIDs.gaza, "0.4")
        try box.ok("save", "--db", "phone.db", FixtureIDs.stocks)
        let top = try box.addComment("phone.db", FixtureIDs.main, "Top")
        let reply = try box.addComment("phone.db", FixtureIDs.main, "Reply", replyTo: top)
        try box.ok("comment", "edit", "--db", "phone.db", reply, "Reply, edited")
        let gone = try box.addComment("phone.db", FixtureIDs.main, "Gone")
        try box.ok("comment", "delete", "--db", "phone.db", gone)
        try box.write("dated.jsonl", #"{"id":"dated","source":"Wire","title":"Dated","body":"B","url":"https://example.org/d","byline":"A. Writer","publishedAt":"2025-07-03T12:00:00Z","updatedAt":"2025-07-03T13:00:00.250Z"}"# + "\n")

        try check("import.schema.json", "import", "--db", "phone.db", "dated.jsonl", "--json")
        try check("import.schema.json", "import", "--db", "phone.db", CLIPaths.fixture.path, "--json")
        try check("sync.schema.json", "sync", "--db", "laptop.db", "phone.db", "--json")

        let list = try check("list.schema.json", "list", "--db", "laptop.db", "--json")
        try check("list.schema.json", "list", "--db", "laptop.db", "--json", "--with-body")
        let paged = try check("list.schema.json", "list", "--db", "laptop.db", "--json", "--limit", "2")
        guard case .object(let page) = paged, case .string(let next)? = page["next"] else {
            Issue.record("a limited page has a string next: \(paged)")
            return
        }
        try check("list.schema.json", "list", "--db", "laptop.db", "--json", "--limit", "2", "--after", next)
        try check("list.schema.json", "list", "--db", "laptop.db", "--json", "--source", "nobody")

        let show = try check("show.schema.json", "show", "--db", "laptop.db", "--json", FixtureIDs.main)
        try check("show.schema.json", "show", "--db", "laptop.db", "--json", "dated")
        try check("log.schema.json", "log", "--db", "laptop.db", "--json")
        try check("log.schema.json", "log", "--db", "laptop.db", "--json", "--limit", "3")
        let status = try check("status.schema.json", "status", "--db", "laptop.db", "--json")
        try box.ok("init", "--db", "empty.db", "--account", "carol")
        try check("status.schema.json", "status", "--db", "empty.db", "--json")
        try check("log.schema.json", "log", "--db", "empty.db", "--json")
        try check("list.schema.json", "list", "--db", "empty.db", "--json")

        try check("bundle-export.schema.json", "bundle", "export", "--db", "phone.db", "--all", "--out", "all.bundle", "--json")
        try check("bundle-inspect.schema.json", "bundle", "inspect", "all.bundle", "--json")
        try box.ok("init", "--db", "tablet.db", "--account", "alice")
        try check("bundle-import.schema.json", "bundle", "import", "--db", "tablet.db", "all.bundle", "--json")

        // Search; the storage budget, eviction, and what they add to show, status and sync.
        try check("search.schema.json", "search", "--db", "laptop.db", "--json", "trump")
        try check("search.schema.json", "search", "--db", "laptop.db", "--json", "zeppelin")
        try check("budget.schema.json", "budget", "show", "--db", "laptop.db", "--json")
        try check("evict.schema.json", "evict", "--db", "laptop.db", "--json")
        try box.ok("budget", "set", "--db", "laptop.db", "1KB")
        try check("budget.schema.json", "budget", "show", "--db", "laptop.db", "--json")
        try check("evict.schema.json", "evict", "--db", "laptop.db", "--json")
        try check("evict.schema.json", "evict", "--db", "laptop.db", "--json", FixtureIDs.main)
        try check("show.schema.json", "show", "--db", "laptop.db", "--json", FixtureIDs.main)
        try check("search.schema.json", "search", "--db", "laptop.db", "--json", "kremlin")
        try check("status.schema.json", "status", "--db", "laptop.db", "--json")
        try check("sync.schema.json", "sync", "--db", "laptop.db", "phone.db", "--json")

        // Every schema file but the shared one has been checked against real output.
        // (fetch-bodies needs a server: MessageTests.serverSync checks it against its schema.)
        #expect(checked == Set(schemas.documents.keys).subtracting(["common.schema.json", "fetch-bodies.schema.json"]), "\(checked)")

        // Values, not only shapes.
        guard case .object(let statusObject) = status, case .string(let clock)? = statusObject["clock"],
              case .object(let showObject) = show, case .number(let count)? = showObject["commentCount"],
              case .object(let listObject) = list, case .array(let items)? = listObject["items"] else {
            Issue.record("unexpected documents")
            return
        }
        #expect(UInt64(clock).map { $0 > 1 << 53 } == true, "a real clock passes 2^53, which is why it is a string: \(clock)")
        #expect(count == "2", "top and reply; the deleted comment is not counted")
        #expect(items.count == 5)
    }

    @Test("read states and comments use dump's key names; dates are UTC with milliseconds")
    func oneNamingScheme() throws {
        try box.replicaWithFixture("r.db")
        try box.ok("read", "--db", "r.db", FixtureIDs.main)
        let top = try box.addComment("r.db", FixtureIDs.main, "Top")
        _ = try box.addComment("r.db", FixtureIDs.main, "Reply", replyTo: top)
        let dump = DumpParts(try box.dumpJSON("r.db"))
        let list = try #require(try parseJSON(try box.ok("list", "--db", "r.db", "--json")) as? [String: Any])
        let item = try #require((list["items"] as? [[String: Any]])?.first { ($0["article"] as? [String: Any])?["id"] as? String == FixtureIDs.main })
        #expect(Set((item["readState"] as? [String: Any])?.keys ?? [:].keys) == Set(try #require(dump.readStates.first).keys))
        let show = try #require(try parseJSON(try box.ok("show", "--db", "r.db", "--json", FixtureIDs.main)) as? [String: Any])
        let comment = try #require((show["comments"] as? [[String: Any]])?.first)
        #expect(Set(comment.keys).subtracting(["replies"]) == Set(try #require(dump.comments.first).keys))
        #expect(Set((show["article"] as? [String: Any])?.keys ?? [:].keys) == Set(try #require(dump.articles.first).keys))
        let readAt = try #require((item["readState"] as? [String: Any])?["readAt"] as? String)
        #expect(readAt.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"#, options: .regularExpression) != nil, "\(readAt)")
    }
}
