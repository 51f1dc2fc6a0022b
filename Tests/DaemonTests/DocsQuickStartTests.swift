import Foundation
import TestSupport
import Testing

/// The quick starts in README.md and docs/*.md, executed: every fenced block marked ```` ```sh quickstart ```` of a
/// document runs, in order, in one bash shell (`set -euo pipefail`) in a fresh working directory, and a following
/// ```` ```text expected ```` block must match what that block printed. See docs/testing.md for the substitutions.
@Suite(.serialized) struct DocsQuickStartTests {
    /// One quick start block and what it should print.
    struct Block: Sendable {
        var line: Int
        var script: String
        var expected: [String]?
    }

    /// Documents that have quick start blocks (a new document is picked up by itself).
    static func documents() -> [String] {
        let root = ProcessRunner.repositoryRoot
        let docs = ((try? FileManager.default.contentsOfDirectory(atPath: root + "/docs")) ?? []).filter {
            $0.hasSuffix(".md")
        }.sorted().map { "docs/" + $0 }
        return (["README.md"] + docs).filter { path in
            let text = (try? String(contentsOfFile: root + "/" + path, encoding: .utf8)) ?? ""
            return text.components(separatedBy: "\n").contains("```sh quickstart")
        }
    }

    /// The marked blocks of a Markdown text, in order.
    static func blocks(_ markdown: String) -> [Block] {
        var blocks: [Block] = []
        var current: (kind: String, line: Int, lines: [String])?
        for (index, line) in markdown.components(separatedBy: "\n").enumerated() {
            if let open = current {
                if line.trimmingCharacters(in: .whitespaces) == "```" {
                    if open.kind == "quickstart" {
                        blocks.append(Block(line: open.line, script: open.lines.joined(separator: "\n")))
                    } else if open.kind == "expected", !blocks.isEmpty, blocks[blocks.count - 1].expected == nil {
                        blocks[blocks.count - 1].expected = open.lines
                    }
                    current = nil
                } else {
                    current?.lines.append(line)
                }
            } else if line.hasPrefix("```") {
                let info = line.dropFirst(3).split(separator: " ").map(String.init)
                let kind =
                    info == ["sh", "quickstart"] ? "quickstart" : info == ["text", "expected"] ? "expected" : "other"
                current = (kind, index + 1, [])
            }
        }
        return blocks
    }

    /// Whether `output` contains the expected lines in order; `...` in an expected line matches any text, and runs
    /// of spaces count as one (table columns are as wide as their widest cell).
    static func matches(_ expected: [String], _ output: String) -> String? {
        func squeeze(_ s: String) -> String {
            s.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
        }
        let lines = output.components(separatedBy: "\n").map(squeeze)
        var position = 0
        for wanted in expected where !wanted.trimmingCharacters(in: .whitespaces).isEmpty {
            let pattern = squeeze(wanted)
            guard let found = lines[position...].firstIndex(where: { like($0, pattern) })
            else {
                return "expected a line like `\(pattern)`"
            }
            position = found + 1
        }
        return nil
    }

    static func like(_ text: String, _ pattern: String) -> Bool {
        let parts = pattern.components(separatedBy: "...")
        guard parts.count > 1 else { return text == pattern }
        guard text.hasPrefix(parts[0]), text.hasSuffix(parts[parts.count - 1]),
            text.count >= parts[0].count + parts[parts.count - 1].count
        else { return false }
        var rest = text.dropFirst(parts[0].count).dropLast(parts[parts.count - 1].count)
        for part in parts.dropFirst().dropLast() where !part.isEmpty {
            guard let r = rest.range(of: part) else { return false }
            rest = rest[r.upperBound...]
        }
        return true
    }

    @Test func theBlockParserAndMatcherFollowTheirRules() {
        let doc = """
            text
            ```sh quickstart
            echo one
            ```
            ```text expected
            o...e
            ```
            ```sh
            not run
            ```
            ```sh quickstart
            echo two
            ```
            """
        let b = Self.blocks(doc)
        #expect(b.count == 2 && b[0].script == "echo one" && b[0].expected == ["o...e"] && b[1].expected == nil)
        #expect(Self.matches(["a", "c...d"], "a\nb\nc x d\n") == nil)
        #expect(Self.matches(["c...d", "a"], "a\nb\nc x d\n") != nil, "order matters")
        #expect(Self.matches(["a...b...c"], "a b\n") != nil)
        #expect(Self.matches(["ID  NAME", "x ... y"], "ID    NAME\nx   1   y\n") == nil, "runs of spaces count as one")
        #expect(!Self.like("ab", "a...b...b"))
    }

    @Test(arguments: documents()) func quickStartRuns(_ document: String) throws {
        let env = ProcessInfo.processInfo.environment
        let root = ProcessRunner.repositoryRoot
        let text = try String(contentsOfFile: root + "/" + document, encoding: .utf8)
        let blocks = Self.blocks(text)
        #expect(!blocks.isEmpty)
        // Peer tools a quick start may call, from the suite's own installs (see docs/testing.md).
        let tools: [(name: String, variable: String)] = [
            ("certbot", "CERTBOT_BIN"), ("python3", "PYKMIP_PYTHON"),
        ]
        let script = blocks.map(\.script).joined(separator: "\n")
        if script.contains("/usr/sbin/sshd"), !FileManager.default.isExecutableFile(atPath: "/usr/sbin/sshd") {
            if dependencyRequired("OPENSSH") { Issue.record("\(document) needs /usr/sbin/sshd") }
            return
        }
        for tool in tools where script.contains(tool.name + " ") && env[tool.variable] == nil {
            if dependencyRequired("DOCS") { Issue.record("\(document) needs \(tool.variable)") }
            return
        }
        // A quick start that needs a PostgreSQL to protect gets the suite's, through libpq's variables.
        var postgres: [String: String] = [:]
        if script.contains("$PGHOST") {
            guard let url = env["PG_TEST_URL"].flatMap(URLComponents.init(string:)), let ca = env["PG_TEST_CA"],
                let host = url.host, let user = url.user
            else {
                if dependencyRequired("PG") { Issue.record("\(document) needs PG_TEST_URL and PG_TEST_CA") }
                return
            }
            postgres = [
                "PGHOST": host, "PGPORT": String(url.port ?? 5432), "PGUSER": user, "PGPASSWORD": url.password ?? "",
                "PGDATABASE": String(url.path.dropFirst()), "PGSSLROOTCERT": ca,
            ]
        }
        let dir = try freshDirectory()
        // The default ports, each replaced by a free one, in the blocks and in the daemon's environment.
        let ports: [(Int, String)] = [
            (8443, "GATEHOUSE_LISTENERS_HTTPS_PORT"), (5696, "GATEHOUSE_LISTENERS_KMIP_PORT"),
            (15432, "GATEHOUSE_LISTENERS_POSTGRES_PORT"), (9090, "GATEHOUSE_LISTENERS_OPERATIONS_PORT"),
            (5002, "GATEHOUSE_ACME_HTTP01_PORT"), (2222, "DOCS_SSHD_PORT"), (18443, "DOCS_RELAY_PORT"),
        ]
        var substitutions: [(Int, Int)] = []
        var prologue = [
            "set -euo pipefail",
            "cd '\(dir.path)'",
            // Whatever a quick start leaves running in the background (the daemon) ends with the shell.
            "trap 'for p in $(jobs -p); do kill $p 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT",
            "export PATH='\((ProcessRunner.gatehouseBinary as NSString).deletingLastPathComponent)':\"$PATH\"",
            "export HOME='\(dir.path)'",
        ]
        for (port, variable) in ports {
            let free = try freeLoopbackPort()
            substitutions.append((port, free))
            prologue.append("export \(variable)=\(free)")
        }
        for (name, value) in postgres.sorted(by: { $0.key < $1.key }) {
            prologue.append("export \(name)='\(value.replacingOccurrences(of: "'", with: "'\\''"))'")
        }
        for tool in tools {
            if let path = env[tool.variable] { prologue.append("\(tool.name)() { '\(path)' \"$@\"; }") }
        }
        var body: [String] = []
        for (index, block) in blocks.enumerated() {
            var script = block.script
            for (from, to) in substitutions {
                script = script.replacingOccurrences(
                    of: "(?<![0-9])\(from)(?![0-9])", with: "\(to)", options: .regularExpression)
            }
            body.append("printf '\\n@@block \(index)@@\\n'")
            body.append(script)
        }
        body.append("printf '\\n@@end@@\\n'")
        let path = dir.path + "/quickstart.sh"
        try (prologue + body).joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        // Standard error joins standard output, so a block's messages stay in its part of the output.
        let run = try ProcessRunner.run(["bash", "-c", "exec bash '\(path)' 2>&1"], cwd: dir.path, timeout: 600)
        let output = run.stdout + run.stderr

        // Split the output by block and compare.
        var outputs: [Int: String] = [:]
        var current: Int?
        var ended = false
        for line in output.components(separatedBy: "\n") {
            if line.hasPrefix("@@block "), let n = Int(line.dropFirst(8).dropLast(2)) {
                current = n
                outputs[n] = ""
            } else if line == "@@end@@" {
                ended = true
                current = nil
            } else if let c = current {
                outputs[c, default: ""] += line + "\n"
            }
        }
        let last = outputs.keys.max() ?? 0
        #expect(
            run.status == 0 && ended,
            """
            \(document): the block at line \(blocks[last].line) failed (exit \(run.status)):
            \(blocks[last].script)
            --- its output ---
            \(outputs[last] ?? "")
            --- stderr ---
            \(run.stderr.suffix(2000))
            """)
        for (index, block) in blocks.enumerated() {
            guard var expected = block.expected, let out = outputs[index] else { continue }
            expected = expected.map { line in
                substitutions.reduce(line) { text, s in
                    text.replacingOccurrences(
                        of: "(?<![0-9])\(s.0)(?![0-9])", with: "\(s.1)", options: .regularExpression)
                }
            }
            if let problem = Self.matches(expected, out) {
                Issue.record("\(document):\(block.line): \(problem); the block printed:\n\(out)")
            }
        }
    }
}
