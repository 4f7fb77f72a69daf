import Foundation
import Testing

/// `bundle export --out` and `knowledge --out` never destroy a replica or a file that is not theirs
/// (issue "Silent divergence", item 2): they refuse unless `--force`, and write through a temporary file.
@Suite("readersync: output files")
final class OutputFileTests {
    let box: Sandbox
    init() throws { box = try Sandbox() }

    @Test("export and knowledge refuse to overwrite a replica or another kind of file; --force replaces what is not a replica")
    func refuseToOverwrite() throws {
        try box.replicaWithFixture("r.db")
        try box.replicaWithFixture("other.db", account: "bob")
        let dumpBefore = try box.dump("r.db")
        let otherBefore = try box.bytes("other.db")
        for args in [["bundle", "export", "--db", "r.db", "--all", "--out", "r.db"],
                     ["bundle", "export", "--db", "r.db", "--all", "--out", "other.db"],
                     ["knowledge", "--db", "r.db", "--out", "r.db"],
                     ["knowledge", "--db", "r.db", "--out", "other.db"],
                     ["bundle", "export", "--db", "r.db", "--all", "--out", "other.db", "--force"]] {
            let result = try box.start(args).finish()
            #expect(result.status == 1, "\(result)")
            #expect(result.stderrLines.count == 1 && result.stderr.contains("replica"), "\(result)")
        }
        #expect(try box.dump("r.db") == dumpBefore, "the replica is intact")
        #expect(try box.bytes("other.db") == otherBefore, "the other device's replica is intact")

        // A file that is neither a bundle nor a replica: refused, then replaced with --force.
        _ = try box.write("notes.txt", "my notes\n")
        let refused = try box.start(["bundle", "export", "--db", "r.db", "--all", "--out", "notes.txt"]).finish()
        #expect(refused.status == 1 && refused.stderr.contains("--force"), "\(refused)")
        #expect(String(decoding: try box.bytes("notes.txt"), as: UTF8.self) == "my notes\n")
        try box.ok("bundle", "export", "--db", "r.db", "--all", "--out", "notes.txt", "--force")
        #expect(try box.bytes("notes.txt").prefix(4) != Data("my n".utf8))

        // An earlier bundle or knowledge file is simply replaced.
        try box.ok("bundle", "export", "--db", "r.db", "--all", "--out", "all.bundle")
        try box.ok("bundle", "export", "--db", "r.db", "--all", "--out", "all.bundle")
        try box.ok("knowledge", "--db", "r.db", "--out", "k.json")
        try box.ok("knowledge", "--db", "r.db", "--out", "k.json")
        // No temporary files are left beside them.
        let left = try FileManager.default.contentsOfDirectory(atPath: box.directory.path).filter { $0.contains(".tmp") || $0.hasPrefix(".") }
        #expect(left.isEmpty, "\(left)")
    }
}
