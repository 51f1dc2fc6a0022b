import Crypto
import EngineAPI
import Foundation
import SwiftASN1
import X509
import _CryptoExtras

/// DER structures the engine signs itself: CRLs (RFC 5280 §5), OCSP responses (RFC 6960) and the CRL
/// distribution point extension. swift-certificates keeps its OCSP types internal and has no CRL builder.
enum PKIDER {
    static let oidCRLDistributionPoints: ASN1ObjectIdentifier = [2, 5, 29, 31]
    static let oidAuthorityKeyIdentifier: ASN1ObjectIdentifier = [2, 5, 29, 35]
    static let oidCRLNumber: ASN1ObjectIdentifier = [2, 5, 29, 20]
    static let oidReasonCode: ASN1ObjectIdentifier = [2, 5, 29, 21]
    static let oidOCSPBasic: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 48, 1, 1]
    static let oidOCSPNonce: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 48, 1, 2]
    static let oidSHA1: ASN1ObjectIdentifier = [1, 3, 14, 3, 2, 26]
    static let oidSHA256: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 2, 1]
    static let oidSHA384: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 2, 2]
    static let oidSHA512: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 2, 3]
    static let oidChallengePassword: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 9, 7]

    /// Signature algorithm names used by templates, with their X.509 algorithm and AlgorithmIdentifier OID.
    static let signatureAlgorithms:
        [(name: String, algorithm: Certificate.SignatureAlgorithm, oid: ASN1ObjectIdentifier, nullParams: Bool)] = [
            ("SHA256-ECDSA", .ecdsaWithSHA256, [1, 2, 840, 10045, 4, 3, 2], false),
            ("SHA384-ECDSA", .ecdsaWithSHA384, [1, 2, 840, 10045, 4, 3, 3], false),
            ("SHA512-ECDSA", .ecdsaWithSHA512, [1, 2, 840, 10045, 4, 3, 4], false),
            ("SHA256-RSA", .sha256WithRSAEncryption, [1, 2, 840, 113549, 1, 1, 11], true),
            ("SHA384-RSA", .sha384WithRSAEncryption, [1, 2, 840, 113549, 1, 1, 12], true),
            ("SHA512-RSA", .sha512WithRSAEncryption, [1, 2, 840, 113549, 1, 1, 13], true),
            ("ED25519", .ed25519, [1, 3, 101, 112], false),
        ]

    static func signatureName(_ algorithm: Certificate.SignatureAlgorithm) -> String? {
        signatureAlgorithms.first { $0.algorithm == algorithm }?.name
    }

    static func serializeAlgorithmIdentifier(_ algorithm: Certificate.SignatureAlgorithm, into s: inout DER.Serializer)
        throws
    {
        guard let entry = signatureAlgorithms.first(where: { $0.algorithm == algorithm }) else {
            throw EngineError(.internal, "unsupported signature algorithm \(algorithm)")
        }
        try s.appendConstructedNode(identifier: .sequence) { s in
            try s.serialize(entry.oid)
            if entry.nullParams { try s.serialize(ASN1Null()) }
        }
    }

    static func bytes(_ build: (inout DER.Serializer) throws -> Void) throws -> [UInt8] {
        var s = DER.Serializer()
        try build(&s)
        return s.serializedBytes
    }

    static func der<T: DERSerializable>(_ value: T) throws -> [UInt8] {
        try bytes { try $0.serialize(value) }
    }

    static func utcTime(_ date: Date) throws -> UTCTime {
        let c = Calendar(identifier: .gregorian).dateComponents(in: TimeZone(identifier: "UTC") ?? .gmt, from: date)
        return try UTCTime(
            year: c.year ?? 1970, month: c.month ?? 1, day: c.day ?? 1, hours: c.hour ?? 0, minutes: c.minute ?? 0,
            seconds: c.second ?? 0)
    }

    static func generalizedTime(_ date: Date) throws -> GeneralizedTime {
        let c = Calendar(identifier: .gregorian).dateComponents(in: TimeZone(identifier: "UTC") ?? .gmt, from: date)
        return try GeneralizedTime(
            year: c.year ?? 1970, month: c.month ?? 1, day: c.day ?? 1, hours: c.hour ?? 0, minutes: c.minute ?? 0,
            seconds: c.second ?? 0, fractionalSeconds: 0)
    }

    /// RFC 5280 Time: UTCTime through 2049, GeneralizedTime after.
    static func serializeTime(_ date: Date, into s: inout DER.Serializer) throws {
        if date < Date(timeIntervalSince1970: 2_524_608_000) {
            try s.serialize(try utcTime(date))
        } else {
            try s.serialize(try generalizedTime(date))
        }
    }

    static func serializeInteger(bytes: [UInt8], into s: inout DER.Serializer) {
        s.appendPrimitiveNode(identifier: .integer) { $0.append(contentsOf: bytes) }
    }

    static func serializeExtension(
        _ oid: ASN1ObjectIdentifier, critical: Bool = false, value: [UInt8], into s: inout DER.Serializer
    ) throws {
        try s.appendConstructedNode(identifier: .sequence) { s in
            try s.serialize(oid)
            if critical { try s.serialize(true) }
            try s.serialize(ASN1OctetString(contentBytes: value[...]))
        }
    }

    /// CRLDistributionPoints with one full-name URI.
    static func crlDistributionPoint(_ url: String) throws -> Certificate.Extension {
        let value = try bytes { s in
            try s.appendConstructedNode(identifier: .sequence) { s in
                try s.appendConstructedNode(identifier: .sequence) { s in
                    try s.appendConstructedNode(
                        identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)
                    ) { s in
                        try s.appendConstructedNode(
                            identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)
                        ) { s in
                            s.appendPrimitiveNode(
                                identifier: ASN1Identifier(tagWithNumber: 6, tagClass: .contextSpecific)
                            ) {
                                $0.append(contentsOf: Array(url.utf8))
                            }
                        }
                    }
                }
            }
        }
        return Certificate.Extension(oid: oidCRLDistributionPoints, critical: false, value: value[...])
    }

    /// The key identifier of a public key: SHA-1 of the subjectPublicKey bits (RFC 5280 §4.2.1.2 method 1).
    static func keyIdentifier(_ key: Certificate.PublicKey) -> [UInt8] {
        Array(Insecure.SHA1.hash(data: Array(key.subjectPublicKeyInfoBytes)))
    }

    // MARK: CRL

    struct RevokedEntry {
        var serial: [UInt8]
        var date: Date
        var reason: RevocationReason
    }

    /// A signed v2 CRL.
    static func crl(
        issuer: DistinguishedName, issuerKey: Certificate.PrivateKey,
        signatureAlgorithm: Certificate.SignatureAlgorithm,
        authorityKeyID: [UInt8], number: Int, thisUpdate: Date, nextUpdate: Date, entries: [RevokedEntry]
    ) throws -> [UInt8] {
        let tbs = try bytes { s in
            try s.appendConstructedNode(identifier: .sequence) { s in
                try s.serialize(1)  // v2
                try serializeAlgorithmIdentifier(signatureAlgorithm, into: &s)
                try s.serialize(issuer)
                try serializeTime(thisUpdate, into: &s)
                try serializeTime(nextUpdate, into: &s)
                if !entries.isEmpty {
                    try s.appendConstructedNode(identifier: .sequence) { s in
                        for e in entries {
                            try s.appendConstructedNode(identifier: .sequence) { s in
                                serializeInteger(bytes: e.serial, into: &s)
                                try serializeTime(e.date, into: &s)
                                if e.reason != .unspecified {
                                    let reason = try PKIDER.bytes { r in
                                        r.appendPrimitiveNode(identifier: .enumerated) {
                                            $0.append(UInt8(e.reason.code))
                                        }
                                    }
                                    try s.appendConstructedNode(identifier: .sequence) { s in
                                        try serializeExtension(oidReasonCode, value: reason, into: &s)
                                    }
                                }
                            }
                        }
                    }
                }
                try s.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) {
                    s in
                    try s.appendConstructedNode(identifier: .sequence) { s in
                        let aki = try PKIDER.bytes { a in
                            try a.appendConstructedNode(identifier: .sequence) { a in
                                a.appendPrimitiveNode(
                                    identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)
                                ) {
                                    $0.append(contentsOf: authorityKeyID)
                                }
                            }
                        }
                        try serializeExtension(oidAuthorityKeyIdentifier, value: aki, into: &s)
                        try serializeExtension(oidCRLNumber, value: try der(number), into: &s)
                    }
                }
            }
        }
        return try signed(tbs, key: issuerKey, algorithm: signatureAlgorithm, certificates: nil)
    }

    /// SEQUENCE { tbs, AlgorithmIdentifier, BIT STRING signature [, [0] EXPLICIT SEQUENCE OF Certificate] }.
    static func signed(
        _ tbs: [UInt8], key: Certificate.PrivateKey, algorithm: Certificate.SignatureAlgorithm, certificates: [[UInt8]]?
    ) throws -> [UInt8] {
        let signature = try key.sign(bytes: tbs, signatureAlgorithm: algorithm)
        return try bytes { s in
            try s.appendConstructedNode(identifier: .sequence) { s in
                s.serializeRawBytes(tbs)
                try serializeAlgorithmIdentifier(algorithm, into: &s)
                try s.serialize(ASN1BitString(bytes: signature.rawRepresentation[...]))
                if let certificates {
                    try s.appendConstructedNode(
                        identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)
                    ) { s in
                        try s.appendConstructedNode(identifier: .sequence) { s in
                            for c in certificates { s.serializeRawBytes(c) }
                        }
                    }
                }
            }
        }
    }

    // MARK: OCSP

    /// One CertID of a request, with its DER (echoed in the response).
    struct OCSPCertID {
        var hashAlgorithm: ASN1ObjectIdentifier
        var issuerNameHash: [UInt8]
        var issuerKeyHash: [UInt8]
        var serial: [UInt8]
        var der: [UInt8]
    }

    struct OCSPRequestInfo {
        var certIDs: [OCSPCertID]
        var nonce: [UInt8]?
    }

    /// Parses an OCSPRequest (RFC 6960 §4.1.1); throws on anything malformed.
    static func parseOCSPRequest(_ der: [UInt8]) throws -> OCSPRequestInfo {
        let root = try DER.parse(der)
        return try DER.sequence(root, identifier: .sequence) { nodes in
            guard let tbs = nodes.next() else { throw ASN1Error.invalidASN1Object(reason: "no tbsRequest") }
            _ = nodes.next()  // optionalSignature [0]: requests are not signed-checked
            return try DER.sequence(tbs, identifier: .sequence) { tbsNodes in
                var info = OCSPRequestInfo(certIDs: [], nonce: nil)
                while let node = tbsNodes.next() {
                    if node.identifier == .sequence {
                        // requestList
                        guard case .constructed(let requests) = node.content else {
                            throw ASN1Error.invalidASN1Object(reason: "requestList")
                        }
                        for request in requests {
                            try DER.sequence(request, identifier: .sequence) { r in
                                guard let certID = r.next() else {
                                    throw ASN1Error.invalidASN1Object(reason: "no CertID")
                                }
                                info.certIDs.append(try parseCertID(certID))
                                while r.next() != nil {}
                            }
                        }
                    } else if node.identifier == ASN1Identifier(tagWithNumber: 2, tagClass: .contextSpecific) {
                        info.nonce = try parseNonce(node)
                    }
                    // [0] version, [1] requestorName: ignored
                }
                guard !info.certIDs.isEmpty, info.certIDs.count <= 64 else {
                    throw ASN1Error.invalidASN1Object(reason: "request list must hold 1–64 requests")
                }
                return info
            }
        }
    }

    static func parseCertID(_ node: ASN1Node) throws -> OCSPCertID {
        let der = Array(node.encodedBytes)
        return try DER.sequence(node, identifier: .sequence) { n in
            guard let alg = n.next() else { throw ASN1Error.invalidASN1Object(reason: "hashAlgorithm") }
            let oid = try DER.sequence(alg, identifier: .sequence) { a -> ASN1ObjectIdentifier in
                guard let o = a.next() else { throw ASN1Error.invalidASN1Object(reason: "hashAlgorithm") }
                while a.next() != nil {}
                return try ASN1ObjectIdentifier(derEncoded: o)
            }
            guard let name = n.next(), let key = n.next(), let serial = n.next() else {
                throw ASN1Error.invalidASN1Object(reason: "CertID")
            }
            let nameHash = try ASN1OctetString(derEncoded: name)
            let keyHash = try ASN1OctetString(derEncoded: key)
            guard serial.identifier == .integer, case .primitive(let serialBytes) = serial.content, !serialBytes.isEmpty
            else {
                throw ASN1Error.invalidASN1Object(reason: "serialNumber")
            }
            return OCSPCertID(
                hashAlgorithm: oid, issuerNameHash: Array(nameHash.bytes), issuerKeyHash: Array(keyHash.bytes),
                serial: Array(serialBytes), der: der)
        }
    }

    static func parseNonce(_ node: ASN1Node) throws -> [UInt8]? {
        guard case .constructed(let inner) = node.content else { return nil }
        var it = inner.makeIterator()
        guard let extensions = it.next() else { return nil }
        return try DER.sequence(extensions, identifier: .sequence) { exts -> [UInt8]? in
            var nonce: [UInt8]?
            while let ext = exts.next() {
                let e = try Certificate.Extension(derEncoded: ext)
                if e.oid == oidOCSPNonce { nonce = Array(e.value) }
            }
            return nonce
        }
    }

    enum OCSPStatus {
        case good
        case revoked(Date, RevocationReason)
        case unknown
    }

    struct OCSPSingle {
        var certID: OCSPCertID
        var status: OCSPStatus
        var thisUpdate: Date
        var nextUpdate: Date
    }

    /// OCSPResponse { unsuccessful status } — 1 malformedRequest, 2 internalError, 3 tryLater, 6 unauthorized.
    static func ocspFailure(_ status: UInt8) -> [UInt8] { [0x30, 0x03, 0x0A, 0x01, status] }

    /// A successful, signed OCSPResponse carrying a BasicOCSPResponse (responder by key hash).
    static func ocspResponse(
        responderKeyHash: [UInt8], producedAt: Date, responses: [OCSPSingle], nonce: [UInt8]?,
        key: Certificate.PrivateKey, algorithm: Certificate.SignatureAlgorithm, certificates: [[UInt8]]
    ) throws -> [UInt8] {
        let ctx0 = ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)
        let ctx1 = ASN1Identifier(tagWithNumber: 1, tagClass: .contextSpecific)
        let ctx2 = ASN1Identifier(tagWithNumber: 2, tagClass: .contextSpecific)
        let tbs = try bytes { s in
            try s.appendConstructedNode(identifier: .sequence) { s in
                try s.appendConstructedNode(identifier: ctx2) { s in
                    try s.serialize(ASN1OctetString(contentBytes: responderKeyHash[...]))
                }
                try s.serialize(try generalizedTime(producedAt))
                try s.appendConstructedNode(identifier: .sequence) { s in
                    for r in responses {
                        try s.appendConstructedNode(identifier: .sequence) { s in
                            s.serializeRawBytes(r.certID.der)
                            switch r.status {
                            case .good:
                                s.appendPrimitiveNode(identifier: ctx0) { _ in }
                            case .revoked(let date, let reason):
                                try s.appendConstructedNode(identifier: ctx1) { s in
                                    try s.serialize(try generalizedTime(date))
                                    if reason != .unspecified {
                                        try s.appendConstructedNode(identifier: ctx0) { s in
                                            s.appendPrimitiveNode(identifier: .enumerated) {
                                                $0.append(UInt8(reason.code))
                                            }
                                        }
                                    }
                                }
                            case .unknown:
                                s.appendPrimitiveNode(identifier: ctx2) { _ in }
                            }
                            try s.serialize(try generalizedTime(r.thisUpdate))
                            try s.appendConstructedNode(identifier: ctx0) { s in
                                try s.serialize(try generalizedTime(r.nextUpdate))
                            }
                        }
                    }
                }
                if let nonce {
                    try s.appendConstructedNode(identifier: ctx1) { s in
                        try s.appendConstructedNode(identifier: .sequence) { s in
                            try serializeExtension(oidOCSPNonce, value: nonce, into: &s)
                        }
                    }
                }
            }
        }
        let basic = try signed(
            tbs, key: key, algorithm: algorithm, certificates: certificates.isEmpty ? nil : certificates)
        return try bytes { s in
            try s.appendConstructedNode(identifier: .sequence) { s in
                s.appendPrimitiveNode(identifier: .enumerated) { $0.append(0) }
                try s.appendConstructedNode(identifier: ctx0) { s in
                    try s.appendConstructedNode(identifier: .sequence) { s in
                        try s.serialize(oidOCSPBasic)
                        try s.serialize(ASN1OctetString(contentBytes: basic[...]))
                    }
                }
            }
        }
    }

    /// Hash for OCSP CertID matching.
    static func hash(_ oid: ASN1ObjectIdentifier, _ data: [UInt8]) -> [UInt8]? {
        switch oid {
        case oidSHA1: Array(Insecure.SHA1.hash(data: data))
        case oidSHA256: Array(SHA256.hash(data: data))
        case oidSHA384: Array(SHA384.hash(data: data))
        case oidSHA512: Array(SHA512.hash(data: data))
        default: nil
        }
    }
}
