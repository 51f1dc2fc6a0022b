import Crypto
import EngineAPI
import Foundation
import KMIPProtocol
import TTLV
import Testing
import _CryptoExtras

@testable import KMIPService

/// Get in another Key Format Type: RSA PKCS#1 ↔ PKCS#8 / X.509 and the Transparent forms (which round-trip
/// through Register's reading of them), EC Transparent keys.
@Suite struct KeyFormatTests {
    func object(_ type: ManagedObjectType, algorithm: UInt32, length: Int32) -> ManagedObject {
        ManagedObject(
            id: "k", project: "p", objectType: type, algorithm: algorithm, cryptographicLength: length, usageMask: 0,
            state: .active,
            names: [], objectGroups: [], initialDate: Date(), lastChangeDate: Date())
    }

    @Test func rsaKeysConvert() throws {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let pkcs1 = Array(key.derRepresentation)
        let priv = object(.privateKey, algorithm: 4, length: 2048)
        let pkcs8 = try #require(try KMIPKeyOperations.convertedKeyMaterial(pkcs1, priv, stored: 3, wanted: 4))
        #expect(pkcs8.value == .byteString(Array(key.pkcs8DERRepresentation)))
        let transparent = try #require(try KMIPKeyOperations.convertedKeyMaterial(pkcs1, priv, stored: 3, wanted: 10))
        #expect(transparent.children.count == 8)
        // Register reads a Transparent RSA Private Key back into the same PKCS#1.
        #expect(KMIPKeyOperations.transparentRSA(transparent, type: .privateKey, format: 10) == pkcs1)
        guard case .bigInteger(let modulus)? = transparent.child(0x420052)?.value else {
            Issue.record("no modulus")
            return
        }
        #expect(modulus.count % 8 == 0, "Big Integers are padded to 8 bytes")
        let primitives = try key.publicKey.getKeyPrimitives()
        #expect(Array(modulus.drop { $0 == 0 }) == Array(primitives.modulus.drop { $0 == 0 }))

        let pub = object(.publicKey, algorithm: 4, length: 2048)
        let pubPKCS1 = Array(key.publicKey.pkcs1DERRepresentation)
        let spki = try #require(try KMIPKeyOperations.convertedKeyMaterial(pubPKCS1, pub, stored: 3, wanted: 5))
        #expect(spki.value == .byteString(Array(key.publicKey.derRepresentation)))
        let transparentPublic = try #require(
            try KMIPKeyOperations.convertedKeyMaterial(pubPKCS1, pub, stored: 3, wanted: 11))
        #expect(KMIPKeyOperations.transparentRSA(transparentPublic, type: .publicKey, format: 11) == pubPKCS1)
        #expect(
            try KMIPKeyOperations.convertedKeyMaterial(pubPKCS1, pub, stored: 3, wanted: 7) == nil, "no such conversion"
        )
        #expect(throws: KMIPFieldError.self) {
            _ = try KMIPKeyOperations.convertedKeyMaterial([0x30, 0x00], pub, stored: 3, wanted: 5)
        }
    }

    @Test func ecKeysConvertToTransparent() throws {
        let key = P384.Signing.PrivateKey()
        let priv = object(.privateKey, algorithm: 6, length: 384)
        let d = try #require(
            try KMIPKeyOperations.convertedKeyMaterial(Array(key.derRepresentation), priv, stored: 4, wanted: 0x14))
        #expect(d.child(0x420075)?.value == .enumeration(0xA))
        guard case .bigInteger(let scalar)? = d.child(0x42002E)?.value else {
            Issue.record("no D")
            return
        }
        #expect(Array(scalar.drop { $0 == 0 }) == Array(key.rawRepresentation.drop { $0 == 0 }))
        let pub = object(.publicKey, algorithm: 6, length: 384)
        let q = try #require(
            try KMIPKeyOperations.convertedKeyMaterial(
                Array(key.publicKey.derRepresentation), pub, stored: 5, wanted: 0x15))
        #expect(q.child(0x420072)?.value == .byteString(Array(key.publicKey.x963Representation)))
    }
}
