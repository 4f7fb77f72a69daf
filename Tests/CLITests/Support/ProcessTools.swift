import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// What a measured run produced: exit status, peak resident memory, output.
struct MeasuredRun: CustomStringConvertible {
    var status: Int32
    /// Peak resident set size of the process (its `VmHWM`, sampled every 20 ms), in KiB.
    var maxRSSKiB: Int
    var seconds: Double
    var stdout: String
    var stderr: String

    var description: String {
        "exit \(status), peak RSS \(maxRSSKiB / 1024) MiB, \(String(format: "%.1f", seconds)) s\n--- stdout:\n\(stdout)--- stderr:\n\(stderr)"
    }
}

enum ProcessTools {
    /// Runs `binary args` in `directory` and measures that one process's peak resident memory.
    static func runMeasured(_ binary: URL, _ args: [String], in directory: URL,
                            environment: [String: String]) throws -> MeasuredRun {
        let outPath = directory.appendingPathComponent(".measured-out-\(UUID().uuidString)").path
        let errPath = directory.appendingPathComponent(".measured-err-\(UUID().uuidString)").path
        defer {
            unlink(outPath)
            unlink(errPath)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        // `sh` changes directory, then execs the binary in the same process.
        let command = "cd \(shellQuoted(directory.path)) && exec " + ([binary.path] + args).map(shellQuoted).joined(separator: " ")
        let argv = [String]([ "/bin/sh", "-c", command]).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        let started = Date()
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, "/bin/sh", &actions, nil, argv, envp)
        guard spawned == 0 else {
            throw CocoaError(.executableLoad, userInfo: [NSLocalizedDescriptionKey: "posix_spawn failed: \(spawned)"])
        }
        // Peak RSS from the kernel's high-water mark of the process's own memory (`VmHWM`), sampled until it
        // exits. Not `wait4`'s `ru_maxrss`: posix_spawn starts the child in this test process's memory (vfork),
        // and exec folds that memory's high-water mark into the child's `ru_maxrss`.
        var status: Int32 = 0
        var peak = 0
        while true {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid { break }
            if reaped < 0 && errno != EINTR { break }
            if let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
               let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
               let kib = Int(line.split(separator: " ").dropFirst().first ?? "") {
                peak = max(peak, kib)
            }
            usleep(20_000)
        }
        let seconds = Date().timeIntervalSince(started)
        let exitStatus: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let stdout = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        let stderr = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        return MeasuredRun(status: exitStatus, maxRSSKiB: peak, seconds: seconds, stdout: stdout, stderr: stderr)
    }

    /// `script` from util-linux, which runs a command on a pseudo-terminal; nil if not installed.
    static let script: String? = {
        let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        return dirs.map { "\($0)/script" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    /// Quotes a word for `sh -c`.
    static func shellQuoted(_ word: String) -> String {
        "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

extension Sandbox {
    /// Runs `shellCommand` (`sh` syntax; `readersync` is the built binary) on a pseudo-terminal through
    /// `script -q -e -c`, in the sandbox. Returns what appeared on the terminal (stdout and stderr together, with
    /// the terminal's `\r\n` line ends) and the command's exit status.
    func runOnTerminal(_ shellCommand: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> (status: Int32, terminal: String) {
        let script = try #require(ProcessTools.script, "util-linux `script` is needed for pseudo-terminal tests",
                                  sourceLocation: sourceLocation)
        let binary = try #require(CLIPaths.binary, sourceLocation: sourceLocation)
        let command = "readersync() { \(ProcessTools.shellQuoted(binary.path)) \"$@\"; }; \(shellCommand)"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: script)
        process.arguments = ["-q", "-e", "-c", command, "/dev/null"]
        process.currentDirectoryURL = directory
        process.environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
                               "HOME": directory.path, "USER": "tester", "LANG": "C.UTF-8", "TMPDIR": directory.path,
                               "TERM": "xterm", "SHELL": "/bin/sh"]
        process.standardInput = FileHandle.nullDevice
        let outURL = directory.appendingPathComponent(".tty-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: outURL)
        process.standardOutput = out
        process.standardError = out
        try process.run()
        process.waitUntilExit()
        try? out.close()
        let text = String(decoding: try Data(contentsOf: outURL), as: UTF8.self)
        try? FileManager.default.removeItem(at: outURL)
        return (process.terminationStatus, text)
    }
}
