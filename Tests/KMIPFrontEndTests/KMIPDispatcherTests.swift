import EngineAPI
import Foundation
import KMIPProtocol
import KMIPService
import ServerSupport
import Synchronization
import TTLV
import TestSupport
import Testing

func requestMessage(
    version: (Int32, Int32), items: [(UInt32, [TTLVItem])], extraHeader: [TTLVItem] = [], batchCount: Int32? = nil
)
    -> [UInt8]
{
    var header: [TTLVItem] = [
        TTLVItem(
            tag: KMIPTag.protocolVersion,
            .structure([
                TTLVItem(tag: KMIPTag.protocolVersionMajor, .integer(version.0)),
                TTLVItem(tag: KMIPTag.protocolVersionMinor, .integer(version.1)),
            ]))
    ]
    header += extraHeader
    header.append(TTLVItem(tag: KMIPTag.batchCount, .integer(batchCount ?? Int32(items.count))))
    var children = [TTLVItem(tag: KMIPTag.requestHeader, .structure(header))]
    for (op, payload) in items {
        children.append(
            TTLVItem(
                tag: KMIPTag.batchItem,
                .structure([
                    TTLVItem(tag: KMIPTag.operation, .enumeration(op)),
                    TTLVItem(tag: KMIPTag.requestPayload, .structure(payload)),
                ])))
    }
    return TTLVEncoder.encode(TTLVItem(tag: KMIPTag.requestMessage, .structure(children)))
}

struct Decoded {
    var version: (Int32, Int32)
    var items: [(status: UInt32, reason: UInt32?, payload: TTLVItem?)]
}

func decodeResponse(_ bytes: [UInt8]) throws -> Decoded {
    let message = try TTLVDecoder().decode(bytes)
    #expect(message.tag == KMIPTag.responseMessage)
    let pv = message.child(KMIPTag.responseHeader)?.child(KMIPTag.protocolVersion)
    guard case .integer(let major)? = pv?.child(KMIPTag.protocolVersionMajor)?.value,
        case .integer(let minor)? = pv?.child(KMIPTag.protocolVersionMinor)?.value
    else { throw TTLVError(.truncated, at: 0) }
    let items = message.children(KMIPTag.batchItem).map { item -> (UInt32, UInt32?, TTLVItem?) in
        var status: UInt32 = 99
        if case .enumeration(let s)? = item.child(KMIPTag.resultStatus)?.value { status = s }
        var reason: UInt32?
        if case .enumeration(let r)? = item.child(KMIPTag.resultReason)?.value { reason = r }
        return (status, reason, item.child(KMIPTag.responsePayload))
    }
    if case .integer(let count)? = message.child(KMIPTag.responseHeader)?.child(KMIPTag.batchCount)?.value {
        #expect(Int(count) == items.count)
    }
    return Decoded(version: (major, minor), items: items)
}

/// A key service that admits every caller and has no objects.
final class NoObjects: KeyEngineDouble, @unchecked Sendable {
    override func verifyKMIPCredential(_ ctx: CallContext, username: String?, password: SecretBytes?) async throws {}
}

let dispatcher = KMIPDispatcher(maxMessageSize: 1 << 20, engine: NoObjects(), clock: { 1_700_000_000 })
let someone = Principal(method: .tlsCertificate, id: "x", name: "client")

@Suite struct KMIPDispatcherTests {
    @Test(arguments: ProtocolVersion.supported)
    func discoverVersionsAnswersInTheRequestVersion(_ v: ProtocolVersion) async throws {
        let (bytes, close) = await dispatcher.process(
            requestMessage(version: (v.major, v.minor), items: [(KMIPOperation.discoverVersions.rawValue, [])]),
            principal: someone)
        #expect(!close)
        let r = try decodeResponse(bytes)
        #expect(r.version == (v.major, v.minor))
        #expect(r.items.count == 1 && r.items[0].status == ResultStatus.success.rawValue)
        #expect(r.items[0].payload?.children(KMIPTag.protocolVersion).count == 7)
    }

    @Test func discoverVersionsFiltersToWhatTheClientListed() async throws {
        func pv(_ a: Int32, _ b: Int32) -> TTLVItem {
            TTLVItem(
                tag: KMIPTag.protocolVersion,
                .structure([
                    TTLVItem(tag: KMIPTag.protocolVersionMajor, .integer(a)),
                    TTLVItem(tag: KMIPTag.protocolVersionMinor, .integer(b)),
                ]))
        }
        let (bytes, _) = await dispatcher.process(
            requestMessage(
                version: (1, 4), items: [(KMIPOperation.discoverVersions.rawValue, [pv(1, 1), pv(3, 0), pv(2, 0)])]),
            principal: someone)
        let payload = try decodeResponse(bytes).items[0].payload
        #expect(payload?.children(KMIPTag.protocolVersion) == [pv(2, 0), pv(1, 1)])
    }

    @Test func unsupportedOperationsAndVersionsAreProperErrors() async throws {
        let archive = try decodeResponse(
            await dispatcher.process(
                requestMessage(version: (1, 2), items: [(KMIPOperation.archive.rawValue, [])]), principal: someone
            ).0)
        #expect(archive.items[0].status == ResultStatus.operationFailed.rawValue)
        #expect(archive.items[0].reason == ResultReason.operationNotSupported.rawValue)
        let unknown = try decodeResponse(
            await dispatcher.process(requestMessage(version: (1, 2), items: [(0x7777, [])]), principal: someone).0)
        #expect(unknown.items[0].reason == ResultReason.operationNotSupported.rawValue)
        let future = try decodeResponse(
            await dispatcher.process(
                requestMessage(version: (3, 0), items: [(KMIPOperation.query.rawValue, [])]), principal: someone
            ).0)
        #expect(future.version == (2, 1))
        #expect(future.items[0].reason == ResultReason.invalidMessage.rawValue)
    }

    @Test func batchErrorContinuation() async throws {
        let items: [(UInt32, [TTLVItem])] = [
            (KMIPOperation.query.rawValue, []), (KMIPOperation.create.rawValue, []),
            (KMIPOperation.discoverVersions.rawValue, []),
        ]
        let stop = try decodeResponse(
            await dispatcher.process(requestMessage(version: (1, 4), items: items), principal: someone).0)
        #expect(stop.items.map(\.status) == [0, 1], "Stop (the default) ends the batch at the first failure")
        let cont = try decodeResponse(
            await dispatcher.process(
                requestMessage(
                    version: (1, 4), items: items,
                    extraHeader: [TTLVItem(tag: KMIPTag.batchErrorContinuationOption, .enumeration(1))]),
                principal: someone
            ).0)
        #expect(cont.items.map(\.status) == [0, 1, 0])
    }

    @Test func malformedRequests() async throws {
        // Not TTLV at all: an error response, then the connection closes.
        let (garbage, close) = await dispatcher.process(
            [0x42, 0x00, 0x78, 0x01, 0x00, 0x00, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8], principal: someone)
        #expect(close)
        #expect(try decodeResponse(garbage).items[0].reason == ResultReason.invalidMessage.rawValue)
        // Valid TTLV, wrong batch count: Invalid Message, connection stays open.
        let (badCount, keep) = await dispatcher.process(
            requestMessage(version: (1, 0), items: [(KMIPOperation.query.rawValue, [])], batchCount: 3),
            principal: someone)
        #expect(!keep)
        #expect(try decodeResponse(badCount).items[0].reason == ResultReason.invalidMessage.rawValue)
        // Not a request message.
        let (other, _) = await dispatcher.process(
            TTLVEncoder.encode(TTLVItem(tag: KMIPTag.responseMessage, .structure([]))), principal: someone)
        #expect(try decodeResponse(other).items[0].reason == ResultReason.invalidMessage.rawValue)
    }

    @Test func maximumResponseSizeIsHonoured() async throws {
        let (bytes, _) = await dispatcher.process(
            requestMessage(
                version: (1, 4), items: [(KMIPOperation.discoverVersions.rawValue, [])],
                extraHeader: [TTLVItem(tag: KMIPTag.maximumResponseSize, .integer(64))]), principal: someone)
        #expect(try decodeResponse(bytes).items[0].reason == ResultReason.responseTooLarge.rawValue)
    }

    @Test func queryListsOperationsAndServerInformation() async throws {
        let (bytes, _) = await dispatcher.process(
            requestMessage(
                version: (1, 4),
                items: [
                    (
                        KMIPOperation.query.rawValue,
                        [
                            TTLVItem(tag: KMIPTag.queryFunction, .enumeration(QueryFunction.operations.rawValue)),
                            TTLVItem(
                                tag: KMIPTag.queryFunction, .enumeration(QueryFunction.serverInformation.rawValue)),
                        ]
                    )
                ]), principal: someone)
        let payload = try decodeResponse(bytes).items[0].payload
        #expect(
            payload?.children(KMIPTag.operation).count
                == KMIPDispatcher.supportedOperations.filter { $0.firstVersion <= ProtocolVersion(1, 4) }.count)
        #expect(payload?.child(KMIPTag.vendorIdentification)?.value == .textString("Gatehouse"))
    }

    /// Capability Information and RNG Parameters appear from 1.3 on, Batch Undo / Continue Capability from 1.4 on, and
    /// only when the function is asked for.
    @Test func queryCapabilitiesFollowTheRequestVersion() {
        let asked = TTLVItem(
            tag: KMIPTag.requestPayload,
            .structure([
                TTLVItem(tag: KMIPTag.queryFunction, .enumeration(QueryFunction.capabilities.rawValue)),
                TTLVItem(tag: KMIPTag.queryFunction, .enumeration(QueryFunction.rngs.rawValue)),
            ]))
        let caps = KMIPProtocolOperations.Capabilities(
            streaming: true, batchUndo: true, batchContinue: true, unwrapMode: 3, destroyAction: 2,
            shreddingAlgorithm: 3, rngMode: 2)
        func answer(_ major: Int32, _ minor: Int32, _ payload: TTLVItem? = nil) -> [TTLVItem] {
            KMIPProtocolOperations.query(
                payload ?? asked, operations: [], objectTypes: [], vendor: "v", version: ProtocolVersion(major, minor),
                capabilities: caps)
        }
        #expect(answer(1, 2).isEmpty, "1.2 defines neither")
        let v13 = answer(1, 3)
        let info13 = v13.first { $0.tag == 0x4200F7 }
        #expect(info13?.child(0x4200EF)?.value == .boolean(true))
        #expect(
            info13?.child(0x4200F9) == nil && info13?.child(0x4200FA) == nil, "Batch Undo / Continue are 1.4 fields")
        #expect(v13.first { $0.tag == 0x4200D9 }?.child(0x4200DA)?.value == .enumeration(1))
        let info14 = answer(1, 4).first { $0.tag == 0x4200F7 }
        #expect(info14?.child(0x4200F9)?.value == .boolean(true) && info14?.child(0x4200FA)?.value == .boolean(true))
        #expect(info14?.child(0x4200F2)?.value == .enumeration(3) && info14?.child(0x4200F3)?.value == .enumeration(2))
        #expect(answer(2, 1).contains { $0.tag == 0x4200F7 })
        let onlyOperations = TTLVItem(
            tag: KMIPTag.requestPayload,
            .structure([TTLVItem(tag: KMIPTag.queryFunction, .enumeration(QueryFunction.operations.rawValue))]))
        #expect(answer(1, 4, onlyOperations).isEmpty, "not asked")
    }
}

/// Every `EngineError` code as a KMIP result reason, in 1.x and in 2.x: a table, so a new code is a decision.
@Suite struct KMIPErrorMappingTests {
    static let table: [EngineError.Code: (v1: ResultReason, v2: ResultReason)] = [
        .unauthenticated: (.authenticationNotSuccessful, .authenticationNotSuccessful),
        .permissionDenied: (.permissionDenied, .permissionDenied),
        .notFound: (.itemNotFound, .objectNotFound),
        .alreadyExists: (.invalidField, .invalidField),
        .invalidArgument: (.invalidField, .invalidField),
        .conflict: (.illegalOperation, .illegalOperation),
        .wrongState: (.illegalOperation, .wrongKeyLifecycleState),
        .outsideUseWindow: (.permissionDenied, .wrongKeyLifecycleState),
        .cryptographicFailure: (.cryptographicFailure, .cryptographicFailure),
        .unavailable: (.generalFailure, .generalFailure),
        .featureNotSupported: (.featureNotSupported, .featureNotSupported),
        .sensitive: (.permissionDenied, .sensitive),
        .notExtractable: (.permissionDenied, .notExtractable),
        .locked: (.authenticationNotSuccessful, .authenticationNotSuccessful),
        .gone: (.generalFailure, .generalFailure),
        .internal: (.generalFailure, .generalFailure),
    ]

    @Test func everyCode() {
        for code in EngineError.Code.all {
            let want = Self.table[code]
            #expect(KMIPResultReasons.reason(for: code, version: ProtocolVersion(1, 4)) == want?.v1, "\(code) in 1.4")
            #expect(KMIPResultReasons.reason(for: code, version: ProtocolVersion(2, 1)) == want?.v2, "\(code) in 2.1")
        }
    }
}

/// The dispatcher against scripted key services: what reaches the engine, and how its answers become results.
@Suite struct KMIPDispatcherEngineTests {
    /// Refuses every Authentication header; counts the calls.
    final class Refusing: KeyEngineDouble, @unchecked Sendable {
        let calls = Mutex(0)
        override func verifyKMIPCredential(_ ctx: CallContext, username: String?, password: SecretBytes?) async throws {
            calls.withLock { $0 += 1 }
            throw EngineError(.unauthenticated, "wrong password")
        }
    }

    /// One active object `a`; `missing` is not found; records activations and the undo it is asked for.
    final class OneObject: KeyEngineDouble, @unchecked Sendable {
        let log = Mutex<[String]>([])
        override func verifyKMIPCredential(_ ctx: CallContext, username: String?, password: SecretBytes?) async throws {
        }
        func object(_ id: String) -> ManagedObject {
            ManagedObject(
                id: id, project: "p", objectType: .symmetricKey, algorithm: 3, cryptographicLength: 256, usageMask: 12,
                state: .active, names: [], objectGroups: [], initialDate: Date(timeIntervalSince1970: 0),
                lastChangeDate: Date(timeIntervalSince1970: 0))
        }
        override func snapshotObject(_ ctx: CallContext, id: String) async throws -> ObjectSnapshot {
            guard id == "a" else { throw EngineError(.notFound, "no object \(id)") }
            log.withLock { $0.append("snapshot \(id)") }
            return ObjectSnapshot(id: id, body: Data(id.utf8))
        }
        override func activateObject(_ ctx: CallContext, id: String) async throws -> ManagedObject {
            guard id == "a" else { throw EngineError(.notFound, "no object \(id)") }
            log.withLock { $0.append("activate \(id) as \(ctx.principal.name)") }
            return object(id)
        }
        override func undoObjectChanges(_ ctx: CallContext, restore: [ObjectSnapshot], discard: [String]) async throws {
            log.withLock { $0.append("undo \(restore.map(\.id)) \(discard)") }
        }
    }

    static func uid(_ id: String) -> [TTLVItem] { [TTLVItem(tag: KMIPTag.uniqueIdentifier, .textString(id))] }

    @Test func aRefusedAuthenticationHeaderFailsEveryItemAndEmptiesTheCertificatesBucket() async throws {
        let engine = Refusing()
        var d = KMIPDispatcher(maxMessageSize: 1 << 16, engine: engine, clock: { 0 })
        d.failures = FailureRateLimiter(listener: "kmip-test", burst: 2, refillPerMinute: 1, tarpit: .zero)
        let request = requestMessage(
            version: (1, 4), items: [(KMIPOperation.query.rawValue, []), (KMIPOperation.discoverVersions.rawValue, [])])
        for _ in 0..<2 {
            let r = try decodeResponse(await d.process(request, principal: someone).response)
            #expect(
                r.items.map(\.reason) == [
                    ResultReason.authenticationNotSuccessful.rawValue,
                    ResultReason.authenticationNotSuccessful.rawValue,
                ])
        }
        let refused = try decodeResponse(await d.process(request, principal: someone).response)
        #expect(refused.items.allSatisfy { $0.reason == ResultReason.permissionDenied.rawValue }, "the bucket is empty")
        #expect(engine.calls.withLock { $0 } == 2, "a refused certificate costs the engine nothing")
        let other = try decodeResponse(
            await d.process(request, principal: Principal(method: .tlsCertificate, id: "y", name: "other")).response)
        #expect(
            other.items[0].reason == ResultReason.authenticationNotSuccessful.rawValue, "buckets are per certificate")
    }

    @Test(arguments: [
        (ProtocolVersion(1, 4), ResultReason.itemNotFound), (ProtocolVersion(2, 1), ResultReason.objectNotFound),
    ])
    func anEngineErrorBecomesTheVersionsResultReason(_ version: ProtocolVersion, _ want: ResultReason) async throws {
        let d = KMIPDispatcher(maxMessageSize: 1 << 16, engine: OneObject(), clock: { 0 })
        let r = try decodeResponse(
            await d.process(
                requestMessage(
                    version: (version.major, version.minor),
                    items: [(KMIPOperation.activate.rawValue, Self.uid("missing"))]),
                principal: someone
            ).response)
        #expect(r.items.map(\.status) == [ResultStatus.operationFailed.rawValue])
        #expect(r.items[0].reason == want.rawValue)
    }

    @Test func batchUndoPutsBackWhatTheEarlierItemsChanged() async throws {
        let engine = OneObject()
        let d = KMIPDispatcher(maxMessageSize: 1 << 16, engine: engine, clock: { 0 })
        let r = try decodeResponse(
            await d.process(
                requestMessage(
                    version: (1, 4),
                    items: [
                        (KMIPOperation.activate.rawValue, Self.uid("a")),
                        (KMIPOperation.activate.rawValue, Self.uid("missing")),
                    ],
                    extraHeader: [TTLVItem(tag: KMIPTag.batchErrorContinuationOption, .enumeration(3))]),
                principal: someone
            ).response)
        #expect(
            r.items.map(\.status) == [ResultStatus.operationUndone.rawValue, ResultStatus.operationFailed.rawValue])
        #expect(
            engine.log.withLock { $0 } == ["snapshot a", "activate a as client", "undo [\"a\"] []"])
    }
}

/// Version discipline and the lifecycle result reasons, through the dispatcher over a scripted engine: Get Attributes
/// and Get Attribute List answer only with attributes the request's version defines; an Activation Date change
/// reaches the engine, and its refusal once Active is Permission Denied in 1.x, Wrong Key Lifecycle State in 2.x.
@Suite struct KMIPVersionDisciplineTests {
    final class Objects: KeyEngineDouble, @unchecked Sendable {
        let edits = Mutex<[String]>([])
        override func verifyKMIPCredential(_ ctx: CallContext, username: String?, password: SecretBytes?) async throws {
        }
        func object(_ id: String) -> ManagedObject {
            var m = ManagedObject(
                id: id, project: "p", objectType: .symmetricKey, algorithm: 3, cryptographicLength: 256, usageMask: 12,
                state: id == "pre" ? .preActive : .active, names: ["n"], objectGroups: [],
                initialDate: Date(timeIntervalSince1970: 0), lastChangeDate: Date(timeIntervalSince1970: 0))
            m.serverGenerated = true
            return m
        }
        override func objectAttributes(_ ctx: CallContext, id: String) async throws -> ManagedObject { object(id) }
        override func snapshotObject(_ ctx: CallContext, id: String) async throws -> ObjectSnapshot {
            ObjectSnapshot(id: id, body: Data(id.utf8))
        }
        override func editObjectAttributes(
            _ ctx: CallContext, id: String, _ edit: @Sendable (inout EditableAttributes) throws -> Void
        ) async throws -> ManagedObject {
            var e = EditableAttributes(names: ["n"], objectGroups: [], customAttributes: [:])
            try edit(&e)
            guard id == "pre" else { throw EngineError(.wrongState, "the object is active") }
            edits.withLock { $0.append("\(id) activation \(Int(e.activationDate?.timeIntervalSince1970 ?? -1))") }
            return object(id)
        }
        override func undoObjectChanges(_ ctx: CallContext, restore: [ObjectSnapshot], discard: [String]) async throws {
        }
    }

    static func names(_ payload: TTLVItem?, _ version: ProtocolVersion) -> Set<String> {
        guard let payload else { return [] }
        if version.major >= 2 {
            let tags =
                (payload.child(KMIPTag.attributes)?.children.map(\.tag) ?? [])
                + payload.children(KMIPTag.attributeReference).compactMap {
                    if case .enumeration(let t) = $0.value { return t } else { return nil }
                }
            return Set(tags.compactMap { KMIPAttribute.namesByTag[$0] })
        }
        return Set(
            (payload.children(KMIPTag.attribute).compactMap { $0.child(KMIPTag.attributeName) }
                + payload.children(KMIPTag.attributeName)).compactMap {
                    if case .textString(let s) = $0.value { return s } else { return nil }
                })
    }

    @Test(arguments: ProtocolVersion.supported)
    func attributesAreThoseTheVersionDefines(_ version: ProtocolVersion) async throws {
        let d = KMIPDispatcher(maxMessageSize: 1 << 20, engine: Objects(), clock: { 0 })
        let r = try decodeResponse(
            await d.process(
                requestMessage(
                    version: (version.major, version.minor),
                    items: [
                        (KMIPOperation.getAttributes.rawValue, KMIPDispatcherEngineTests.uid("act")),
                        (KMIPOperation.getAttributeList.rawValue, KMIPDispatcherEngineTests.uid("act")),
                    ]),
                principal: someone
            ).response)
        #expect(r.items.map(\.status) == [0, 0])
        let all = Self.names(r.items[0].payload, version)
        let listed = Self.names(r.items[1].payload, version)
        #expect(all.contains("State") && all.contains("Unique Identifier"))
        for name in all.union(listed) {
            #expect(KMIPAttribute.isDefined(name, in: version), "\(name) is not defined in \(version)")
        }
        #expect(all.contains("Fresh") == (version >= ProtocolVersion(1, 1)))
        #expect(all.contains("Original Creation Date") == (version >= ProtocolVersion(1, 2)))
        #expect(all.contains("Random Number Generator") == (version >= ProtocolVersion(1, 3)))
        #expect(listed.contains("Sensitive") == (version >= ProtocolVersion(1, 4)))
        // 2.x: the protection flags always have a value and are listed at their defaults; Key Format Type too.
        #expect(all.contains("Sensitive") == (version.major >= 2))
        #expect(all.contains("Never Extractable") == (version.major >= 2))
        #expect(all.contains("Key Format Type") == (version.major >= 2))
    }

    @Test(arguments: [
        (ProtocolVersion(1, 4), ResultReason.permissionDenied),
        (ProtocolVersion(2, 0), ResultReason.wrongKeyLifecycleState),
        (ProtocolVersion(2, 1), ResultReason.wrongKeyLifecycleState),
    ])
    func activationDateChangesWhilePreActiveOnly(_ version: ProtocolVersion, _ refused: ResultReason) async throws {
        let engine = Objects()
        let d = KMIPDispatcher(maxMessageSize: 1 << 20, engine: engine, clock: { 0 })
        func modify(_ id: String) -> [TTLVItem] {
            let date = TTLVItem(tag: KMIPTag.activationDate, .dateTime(1_900_000_000))
            let change =
                version.major >= 2
                ? TTLVItem(tag: KMIPTag.newAttribute, .structure([date]))
                : TTLVItem(
                    tag: KMIPTag.attribute,
                    .structure([
                        TTLVItem(tag: KMIPTag.attributeName, .textString("Activation Date")),
                        TTLVItem(tag: KMIPTag.attributeValue, date.value),
                    ]))
            return KMIPDispatcherEngineTests.uid(id) + [change]
        }
        let r = try decodeResponse(
            await d.process(
                requestMessage(
                    version: (version.major, version.minor),
                    items: [
                        (KMIPOperation.modifyAttribute.rawValue, modify("pre")),
                        (KMIPOperation.modifyAttribute.rawValue, modify("act")),
                    ], extraHeader: [TTLVItem(tag: KMIPTag.batchErrorContinuationOption, .enumeration(1))]),
                principal: someone
            ).response)
        #expect(r.items.map(\.status) == [0, ResultStatus.operationFailed.rawValue])
        #expect(r.items[1].reason == refused.rawValue)
        #expect(engine.edits.withLock { $0 } == ["pre activation 1900000000"])
    }
}

/// Operations by version: RNG Seed is answered with how much seed was accepted, PKCS#11 is Operation Not Supported,
/// and Query lists only the operations the request's version defines.
@Suite struct KMIPOperationVersionTests {
    static let engine = KMIPVersionDisciplineTests.Objects()

    func run(_ version: (Int32, Int32), _ op: KMIPOperation, _ payload: [TTLVItem]) async throws -> (
        status: UInt32, reason: UInt32?, payload: TTLVItem?
    ) {
        let d = KMIPDispatcher(maxMessageSize: 1 << 20, engine: Self.engine, clock: { 0 })
        let r = try decodeResponse(
            await d.process(requestMessage(version: version, items: [(op.rawValue, payload)]), principal: someone)
                .response)
        return r.items[0]
    }

    @Test func rngSeedAcceptsUpTo4096Bytes() async throws {
        let small = try await run(
            (1, 4), .rngSeed, [TTLVItem(tag: KMIPTag.data, .byteString(Array(repeating: 9, count: 32)))])
        #expect(small.status == 0)
        #expect(small.payload?.child(0x4200C4)?.value == .integer(32))
        let big = try await run(
            (2, 1), .rngSeed, [TTLVItem(tag: KMIPTag.data, .byteString(Array(repeating: 9, count: 10000)))])
        #expect(big.payload?.child(0x4200C4)?.value == .integer(4096), "the server may accept less than it is given")
        let empty = try await run((2, 1), .rngSeed, [])
        #expect(empty.reason == ResultReason.missingData.rawValue)
    }

    @Test func pkcs11IsNotSupportedAndNewerOperationsAreStillServed() async throws {
        let pkcs11 = try await run((2, 1), .pkcs11, [])
        #expect(pkcs11.status == ResultStatus.operationFailed.rawValue)
        #expect(pkcs11.reason == ResultReason.operationNotSupported.rawValue)
        // PyKMIP sends RNG Seed, Encrypt and MAC (1.2 operations) under a 1.0 header: they are served.
        let seed = try await run((1, 0), .rngSeed, [TTLVItem(tag: KMIPTag.data, .byteString([1, 2, 3]))])
        #expect(seed.status == 0 && seed.payload?.child(0x4200C4)?.value == .integer(3))
    }

    @Test(arguments: ProtocolVersion.supported)
    func queryListsTheVersionsOperations(_ version: ProtocolVersion) async throws {
        let r = try await run(
            (version.major, version.minor), .query,
            [TTLVItem(tag: KMIPTag.queryFunction, .enumeration(QueryFunction.operations.rawValue))])
        let listed = (r.payload?.children(KMIPTag.operation) ?? []).compactMap {
            if case .enumeration(let v) = $0.value { return KMIPOperation(rawValue: v) } else { return nil }
        }
        #expect(!listed.isEmpty)
        for op in listed { #expect(op.firstVersion <= version, "\(op) listed in \(version)") }
        #expect(listed.contains(.rngSeed) == (version >= ProtocolVersion(1, 2)))
        #expect(listed.contains(.setAttribute) == (version.major >= 2))
    }
}
