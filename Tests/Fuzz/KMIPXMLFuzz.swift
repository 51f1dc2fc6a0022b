// libFuzzer target for the KMIP XML encoding (the parser and the XML → TTLV conversion): any input either throws a
// KMIPXMLError or gives items that survive TTLV → XML → TTLV unchanged — never a crash, a hang or an out-of-bounds
// read (built with ASan). Built and run by Tests/Fuzz/run-fuzz.sh.
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let nodes = try? KMIPXMLParser.parse(text) else { return 0 }
    let codec = KMIPXMLCodec(now: 1_700_000_000)
    for node in nodes {
        guard let item = try? codec.item(node) else { continue }
        let xml = KMIPXMLCodec.xml(item)
        guard let again = try? KMIPXMLParser.parse(xml).first, let back = try? codec.item(again) else {
            fatalError("the XML written for an item does not read back: \(xml)")
        }
        if back != item { fatalError("XML round trip changed the item: \(xml)") }
        _ = TTLVEncoder.encode(item)
    }
    return 0
}
