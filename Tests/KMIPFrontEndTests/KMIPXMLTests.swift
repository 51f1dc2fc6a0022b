import Foundation
import KMIPProtocol
import TTLV
import Testing

/// The KMIP XML encoding and the test-case matcher, without sockets: every request of the OASIS test cases
/// converts to TTLV and back to the same TTLV, malformed XML is refused with an error, and the matcher tolerates
/// exactly what a server may choose.
@Suite struct KMIPXMLTests {
    static func vectorFiles() throws -> [String] {
        let root =
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().path
            + "/vectors/kmip"
        return try ["v1.4-mandatory", "v2.1-baseline"].flatMap { folder in
            try FileManager.default.contentsOfDirectory(atPath: root + "/" + folder).filter { $0.hasSuffix(".xml") }.map
            { root + "/" + folder + "/" + $0 }
        }
    }

    @Test func everyTestCaseRequestRoundTripsThroughTTLV() throws {
        var converted = 0
        var steps = 0
        for file in try Self.vectorFiles() {
            let script = try KMIPReplayScript(xml: try String(contentsOfFile: file, encoding: .utf8))
            #expect(!script.steps.isEmpty, "\(file)")
            // Placeholders get stand-in values so every request converts; a request that still does not convert is
            // a failure, named, not a skip.
            var codec = KMIPXMLCodec(now: 1_700_000_000)
            for step in script.steps {
                steps += 1
                var attempt: TTLVItem?
                var lastError: (any Error)?
                for _ in 0..<8 where attempt == nil {
                    do { attempt = try codec.item(step.request) } catch let e as KMIPXMLError
                        where e.description.contains("is not known yet")
                    {
                        let name = e.description.split(separator: " ").first.map { String($0.dropFirst()) } ?? ""
                        codec.variables[name] =
                            name.contains("IDENTIFIER") ? .textString("id") : .byteString([1, 2, 3])
                        lastError = e
                    }
                }
                guard let item = attempt else {
                    Issue.record("\(file): a request does not convert: \(String(describing: lastError))")
                    continue
                }
                let bytes = TTLVEncoder.encode(item)
                #expect(try TTLVDecoder(maxMessageSize: 1 << 22).decode(bytes) == item)
                let xml = KMIPXMLCodec.xml(item)
                let back = try KMIPXMLCodec(now: 1_700_000_000).item(try #require(try KMIPXMLParser.parse(xml).first))
                #expect(back == item, "\(file): \(xml.prefix(400))")
                // And the JSON encoding.
                let json = KMIPJSON.serialize(item)
                #expect(
                    try KMIPXMLCodec(now: 1_700_000_000).item(try KMIPJSON.parse(json)) == item,
                    "\(file): \(String(decoding: json.prefix(400), as: UTF8.self))")
                converted += 1
            }
        }
        #expect(converted == steps && steps > 500, "\(converted) of \(steps) requests converted")
    }

    @Test func knownValuesConvert() throws {
        let xml = """
            <?xml version="1.0"?><!-- comment -->
            <Attribute>
              <AttributeName type="TextString" value="Cryptographic Usage Mask"/>
              <AttributeValue type="Integer" value="Encrypt Decrypt"/>
            </Attribute>
            <Attribute><AttributeName type="TextString" value="Cryptographic Algorithm"/><AttributeValue type="Enumeration" value="AES"/></Attribute>
            <Operation type="Enumeration" value="SignatureVerify"/>
            <TextString tag="0x540001" type="TextString" value="a &amp; &lt;b&gt; &#x41;"/>
            <ActivationDate type="DateTime" value="1970-01-01T00:00:06+00:00"/>
            <KeyMaterial type="ByteString" value="00ff10"/>
            <Fresh type="Boolean" value="true"/>
            <OpaqueDataType type="Enumeration" value="0x80000001"/>
            """
        let nodes = try KMIPXMLParser.parse(xml)
        let codec = KMIPXMLCodec()
        let items = try nodes.map { try codec.item($0) }
        #expect(items[0].children[1] == TTLVItem(tag: KMIPTag.attributeValue, .integer(12)))
        #expect(items[1].children[1] == TTLVItem(tag: KMIPTag.attributeValue, .enumeration(3)))
        #expect(items[2] == TTLVItem(tag: KMIPTag.operation, .enumeration(KMIPOperation.signatureVerify.rawValue)))
        #expect(items[3] == TTLVItem(tag: 0x540001, .textString("a & <b> A")))
        #expect(items[4] == TTLVItem(tag: KMIPTag.activationDate, .dateTime(6)))
        #expect(items[5] == TTLVItem(tag: KMIPTag.keyMaterial, .byteString([0, 255, 16])))
        #expect(items[6] == TTLVItem(tag: 0x4200A8, .boolean(true)))
        #expect(items[7] == TTLVItem(tag: KMIPTag.opaqueDataType, .enumeration(0x8000_0001)))
    }

    @Test func jsonItemsConvert() throws {
        let json =
            #"{"tag":"Attribute","value":[{"tag":"AttributeName","type":"TextString","value":"Cryptographic Usage Mask"},"#
            + #"{"tag":"AttributeValue","type":"Integer","value":"Encrypt Decrypt"}]}"#
        let item = try KMIPXMLCodec().item(try KMIPJSON.parse(Data(json.utf8)))
        #expect(item.children[1] == TTLVItem(tag: KMIPTag.attributeValue, .integer(12)))
        #expect(
            try KMIPXMLCodec().item(try KMIPJSON.parse(Data(#"{"tag":"BatchCount","type":"Integer","value":3}"#.utf8)))
                == TTLVItem(tag: KMIPTag.batchCount, .integer(3)))
        #expect(
            try KMIPXMLCodec().item(
                try KMIPJSON.parse(Data(#"{"tag":"LeaseTime","type":"LongInteger","value":9007199254740993}"#.utf8)))
                == TTLVItem(tag: 0x420049, .longInteger(9_007_199_254_740_993)))
        #expect(
            try KMIPXMLCodec().item(try KMIPJSON.parse(Data(#"{"tag":"Fresh","type":"Boolean","value":true}"#.utf8)))
                == TTLVItem(tag: 0x4200A8, .boolean(true)))
        for bad in [
            #"[]"#, #"{"value":1}"#, #"{"tag":"BatchCount","type":"Integer"}"#,
            #"{"tag":"BatchCount","type":"Integer","value":1.5}"#, "nope",
            String(repeating: #"{"tag":"Attribute","value":["#, count: 80),
        ] {
            #expect(throws: KMIPXMLError.self, "\(bad)") {
                _ = try KMIPXMLCodec().item(try KMIPJSON.parse(Data(bad.utf8)))
            }
        }
    }

    @Test func malformedXMLIsRefused() {
        for bad in [
            "<A>", "<A></B>", "<A type=\"Integer\" value=\"1\"", "<A value=unquoted/>", "<!-- open",
            "<Operation type=\"Enumeration\" value=\"&bogus;\"/>",
            String(repeating: "<Attribute>", count: 100),
        ] {
            #expect(throws: KMIPXMLError.self, "\(bad)") { _ = try KMIPXMLParser.parse(bad) }
        }
        for bad in [
            "<Nope type=\"Integer\" value=\"1\"/>", "<Operation type=\"Enumeration\" value=\"Frobnicate\"/>",
            "<BatchCount type=\"Integer\" value=\"x\"/>", "<KeyMaterial type=\"ByteString\" value=\"abc\"/>",
            "<ActivationDate type=\"DateTime\" value=\"yesterday\"/>", "<BatchCount type=\"Float\" value=\"1\"/>",
        ] {
            #expect(throws: KMIPXMLError.self, "\(bad)") {
                _ = try KMIPXMLCodec().item(try #require(try KMIPXMLParser.parse(bad).first))
            }
        }
    }

    @Test func testCasesAreGroupedByProfileWithOptionalCasesApart() {
        let cases = [
            "CS-AC-M-OAEP-2-14": "CS-AC", "SUITEB_128-M-1-14": "SUITEB", "BL-M-1-21": "BL",
            "MSGENC-XML-M-1-14": "MSGENC",
            "SKLC-O-1-21": "SKLC (optional)", "CS-BC-O-GCM-1-21": "CS-BC (optional)", "AKLC-M-2-14": "AKLC",
        ]
        for (name, profile) in cases { #expect(KMIPReplayScript.profile(of: name) == profile, "\(name)") }
    }

    /// The Random Number Generator is the server's own (2.x: an item of Attributes; 1.x: an attribute's value): any
    /// structure passes, while the attribute's absence still fails.
    @Test func theServersRandomNumberGeneratorIsItsOwn() throws {
        let expected = try #require(
            try KMIPXMLParser.parse(
                """
                <Attributes>
                  <RandomNumberGenerator><RNGAlgorithm type="Enumeration" value="ANSIX9_31"/></RandomNumberGenerator>
                  <State type="Enumeration" value="Active"/>
                </Attributes>
                """
            ).first)
        let state = TTLVItem(tag: KMIPTag.state, .enumeration(2))
        let ours = TTLVItem(
            tag: 0x4200DE,
            .structure([TTLVItem(tag: 0x4200DA, .enumeration(3)), TTLVItem(tag: 0x4200DB, .enumeration(5))]))
        var matcher = KMIPResponseMatcher(codec: KMIPXMLCodec())
        #expect(matcher.match(expected, TTLVItem(tag: KMIPTag.attributes, .structure([ours, state]))).isEmpty)
        #expect(!matcher.match(expected, TTLVItem(tag: KMIPTag.attributes, .structure([state]))).isEmpty)
    }

    @Test func theMatcherToleratesOnlyWhatTheServerChooses() throws {
        let expected = try #require(
            try KMIPXMLParser.parse(
                """
                <ResponsePayload>
                  <UniqueIdentifier type="TextString" value="$UNIQUE_IDENTIFIER_0"/>
                  <Attribute><AttributeName type="TextString" value="State"/><AttributeValue type="Enumeration" value="Active"/></Attribute>
                  <Attribute><AttributeName type="TextString" value="Initial Date"/><AttributeValue type="DateTime" value="$NOW"/></Attribute>
                </ResponsePayload>
                """
            ).first)
        func payload(_ state: UInt32, index: Int32? = nil, extra: [TTLVItem] = []) -> TTLVItem {
            var state: [TTLVItem] = [
                TTLVItem(tag: KMIPTag.attributeName, .textString("State")),
                TTLVItem(tag: KMIPTag.attributeValue, .enumeration(state)),
            ]
            if let index { state.insert(TTLVItem(tag: KMIPTag.attributeIndex, .integer(index)), at: 1) }
            return TTLVItem(
                tag: KMIPTag.responsePayload,
                .structure(
                    [
                        TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString("abc")),
                        // Another order than the test case's.
                        TTLVItem(
                            tag: KMIPTag.attribute,
                            .structure([
                                TTLVItem(tag: KMIPTag.attributeName, .textString("Initial Date")),
                                TTLVItem(tag: KMIPTag.attributeValue, .dateTime(5)),
                            ])),
                        TTLVItem(tag: KMIPTag.attribute, .structure(state)),
                    ] + extra))
        }
        var matcher = KMIPResponseMatcher(codec: KMIPXMLCodec())
        #expect(matcher.match(expected, payload(2, index: 0)).isEmpty)
        #expect(matcher.codec.variables["UNIQUE_IDENTIFIER_0"] == .textString("abc"))
        // Now bound: another identifier does not match; nor does another state, an index other than 0 or an extra item.
        var other = matcher
        #expect(
            !other.match(
                expected,
                TTLVItem(
                    tag: KMIPTag.responsePayload,
                    .structure([TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString("xyz"))]))
            ).isEmpty)
        #expect(!matcher.match(expected, payload(1)).isEmpty)
        #expect(!matcher.match(expected, payload(2, index: 1)).isEmpty)
        #expect(
            !matcher.match(expected, payload(2, extra: [TTLVItem(tag: KMIPTag.objectType, .enumeration(2))])).isEmpty)
        #expect(
            matcher.match(expected, payload(2, extra: [TTLVItem(tag: KMIPTag.resultMessage, .textString("any words"))]))
                .isEmpty)
    }

    /// A ciphertext the reference server chose (Encrypt without an IV) that the test case later sends back literally
    /// is replaced by this server's; values this server did not choose are sent as written.
    @Test func serverChosenValuesSentBackAreSubstituted() throws {
        func node(_ xml: String) throws -> KMIPXMLNode { try #require(try KMIPXMLParser.parse(xml).first) }
        var matcher = KMIPResponseMatcher(codec: KMIPXMLCodec())
        matcher.expect(
            after: try node(
                """
                <RequestMessage><BatchItem><Operation type="Enumeration" value="Encrypt"/><RequestPayload>
                <Data type="ByteString" value="0102"/></RequestPayload></BatchItem></RequestMessage>
                """))
        let expected = try node(#"<ResponsePayload><Data type="ByteString" value="fd91"/></ResponsePayload>"#)
        let ours = TTLVItem(
            tag: KMIPTag.responsePayload, .structure([TTLVItem(tag: KMIPTag.data, .byteString([0xAA, 0xBB]))]))
        #expect(matcher.match(expected, ours).isEmpty)
        let decrypt = try matcher.codec.item(
            try node(
                """
                <RequestPayload><Data type="ByteString" value="fd91"/><IVCounterNonce type="ByteString" value="0102"/></RequestPayload>
                """))
        #expect(decrypt.child(KMIPTag.data)?.value == .byteString([0xAA, 0xBB]))
        #expect(decrypt.child(KMIPTag.ivCounterNonce)?.value == .byteString([1, 2]))
        // Not server-chosen (Decrypt): the expected Data must be exactly it, and nothing is substituted.
        matcher.expect(
            after: try node(
                """
                <RequestMessage><BatchItem><Operation type="Enumeration" value="Decrypt"/><RequestPayload>
                <Data type="ByteString" value="0102"/></RequestPayload></BatchItem></RequestMessage>
                """))
        let plain = try node(#"<ResponsePayload><Data type="ByteString" value="0102"/></ResponsePayload>"#)
        #expect(
            !matcher.match(
                plain,
                TTLVItem(tag: KMIPTag.responsePayload, .structure([TTLVItem(tag: KMIPTag.data, .byteString([9, 9]))]))
            ).isEmpty)
        #expect(matcher.codec.substitutions[[1, 2]] == nil)
    }
}
