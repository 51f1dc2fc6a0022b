import Foundation
import TestSupport
import Testing

@testable import TTLV

/// Messages encoded by PyKMIP 0.11.0 (an independent KMIP implementation) decode with this codec, and re-encode
/// to the same bytes. Needs `PYKMIP_PYTHON` (a Python with pykmip; Tests/run-all.sh installs it).
@Suite struct PyKMIPInteropTests {
    @Test func pykmipMessagesRoundTripByteForByte() throws {
        guard let python = ProcessInfo.processInfo.environment["PYKMIP_PYTHON"] else {
            if dependencyRequired("PYKMIP") { Issue.record("PYKMIP_PYTHON is not set") }
            return
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [root + "/Tests/scripts/pykmip-encode.py"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let lines = output.split(separator: "\n")
        #expect(lines.count == 4)
        for line in lines {
            let parts = line.split(separator: " ")
            guard parts.count == 2 else { continue }
            let bytes = hex(String(parts[1]))
            let item = try TTLVDecoder().decode(bytes)
            #expect(item.tag == 0x420078, "\(parts[0]) is a Request Message")
            #expect(item.child(0x420077) != nil, "\(parts[0]) has a Request Header")
            #expect(TTLVEncoder.encode(item) == bytes, "\(parts[0]) re-encodes identically")
        }
    }
}
