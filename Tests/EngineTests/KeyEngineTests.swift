import Crypto
import EngineAPI
import Foundation
import StorageAPI
import SwiftASN1
import Testing
import X509

@testable import Engine

@Suite struct KeyEngineTests {
    @Test func keyMaterialIsSealedAtRestAndErasedByDestroy() async throws {
        let storage = InMemoryStorage()
        let engine = try await openEngine(storage, key: SymmetricKey(size: .bits256))
        let marker: [UInt8] = Array("0123456789abcdef".utf8)
        let m = try await engine.registerObject(
            admin, project: "p", ObjectSpec(objectType: .symmetricKey, algorithm: 3, names: ["k"]),
            material: SecretBytes(marker))
        #expect(m.cryptographicLength == 128 && m.state == .preActive)
        func stored() async throws -> Record? {
            try await storage.withTransaction { tx in try await tx.get(kind: "kms-object", id: m.id) }
        }
        let before = try #require(try await stored())
        #expect(before.body.range(of: Data(marker)) == nil, "no plaintext key material at rest")
        #expect(before.body.range(of: Data(Data(marker).base64EncodedString().utf8)) == nil)
        #expect(try await engine.getObject(admin, id: m.id).1 == SecretBytes(marker))
        _ = try await engine.destroyObject(admin, id: m.id)
        let after = try #require(try await stored())
        let body = try JSONDecoder().decode(ManagedObjectBody.self, from: try StoredJSON.unpack(after.body))
        #expect(body.material == nil && body.meta.state == .destroyed && body.meta.destroyDate != nil)
        #expect(try await engine.getObject(admin, id: m.id).1 == nil)
    }

    /// Sensitive material leaves only wrapped, non-extractable material never; Fresh clears (durably) at the first
    /// Get; Always Sensitive / Never Extractable remember the past.
    @Test func sensitiveExtractableAndFresh() async throws {
        let storage = InMemoryStorage()
        let engine = try await openEngine(storage, key: SymmetricKey(size: .bits256))
        var spec = ObjectSpec(
            objectType: .symmetricKey, algorithm: 3, cryptographicLength: 256, usageMask: UsageMask.wrapKey.rawValue)
        let kek = try await engine.createKey(admin, project: "p", spec)
        _ = try await engine.activateObject(admin, id: kek.id)
        spec.usageMask = nil
        spec.sensitive = true
        let secret = try await engine.createKey(admin, project: "p", spec)
        #expect(secret.fresh == true && secret.alwaysSensitive == true && secret.neverExtractable == false)
        #expect(await code { _ = try await engine.getObject(admin, id: secret.id) } == .sensitive)
        let (_, wrapped) = try await engine.getWrapped(admin, id: secret.id, wrappingKeyID: kek.id)
        #expect(wrapped.count == 40)
        #expect(
            try await engine.objectAttributes(admin, id: secret.id).fresh == false, "served (wrapped): no longer fresh")
        // Clearing Sensitive lets Get through, and Always Sensitive becomes false for good.
        let cleared = try await engine.editObjectAttributes(admin, id: secret.id) { $0.sensitive = false }
        #expect(cleared.sensitive == false && cleared.alwaysSensitive == false)
        #expect(try await engine.getObject(admin, id: secret.id).1 != nil)
        _ = try await engine.editObjectAttributes(admin, id: secret.id) { $0.sensitive = true }
        #expect(try await engine.objectAttributes(admin, id: secret.id).alwaysSensitive == false)

        spec.sensitive = nil
        spec.extractable = false
        let locked = try await engine.createKey(admin, project: "p", spec)
        #expect(locked.neverExtractable == true)
        #expect(await code { _ = try await engine.getObject(admin, id: locked.id) } == .notExtractable)
        #expect(
            await code { _ = try await engine.getWrapped(admin, id: locked.id, wrappingKeyID: kek.id) }
                == .notExtractable)

        let plain = try await engine.createKey(
            admin, project: "p", ObjectSpec(objectType: .symmetricKey, algorithm: 3, cryptographicLength: 128))
        #expect(plain.fresh == true)
        _ = try await engine.getObject(admin, id: plain.id)
        let record = try #require(
            try await storage.withTransaction { tx in try await tx.get(kind: "kms-object", id: plain.id) })
        #expect(
            try JSONDecoder().decode(ManagedObjectBody.self, from: try StoredJSON.unpack(record.body)).meta.fresh
                == false, "stored, not only cached")
        let registered = try await engine.registerObject(
            admin, project: "p", ObjectSpec(objectType: .symmetricKey, algorithm: 3),
            material: SecretBytes([UInt8](repeating: 1, count: 16)))
        #expect(registered.fresh == nil, "a registered key was never fresh: the client had it")
    }

    /// Usage Limits: Encrypt and MAC use them up (bytes or operations), decryption does not; allocations take from the
    /// same count; the count is stored.
    /// The Activation Date changes only while the object is Pre-Active (a date that has come activates it), and use
    /// outside the Process Start / Protect Stop window is its own refusal (KMIP 2.x: Wrong Key Lifecycle State).
    @Test func activationDateWhilePreActiveAndTheUseWindow() async throws {
        let storage = InMemoryStorage()
        let engine = try await openEngine(storage, key: SymmetricKey(size: .bits256))
        let k = try await engine.createKey(
            admin, project: "p", ObjectSpec(objectType: .symmetricKey, algorithm: 3, cryptographicLength: 128))
        #expect(k.state == .preActive && k.activationDate == nil)
        let later = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 + 86400).rounded())
        let planned = try await engine.editObjectAttributes(admin, id: k.id) { $0.activationDate = later }
        #expect(planned.state == .preActive && planned.activationDate == later)
        let unplanned = try await engine.editObjectAttributes(admin, id: k.id) { $0.activationDate = nil }
        #expect(unplanned.state == .preActive && unplanned.activationDate == nil)
        let past = Date(timeIntervalSince1970: 1_000_000)
        let active = try await engine.editObjectAttributes(admin, id: k.id) { $0.activationDate = past }
        #expect(active.state == .active && active.activationDate == past, "a date that has come activates it")
        #expect(
            await code { _ = try await engine.editObjectAttributes(admin, id: k.id) { $0.activationDate = later } }
                == .wrongState)
        #expect(try await engine.objectAttributes(admin, id: k.id).activationDate == past, "unchanged")
        // Other edits of an Active object still go through.
        #expect(try await engine.editObjectAttributes(admin, id: k.id) { $0.names = ["renamed"] }.names == ["renamed"])

        var spec = ObjectSpec(
            objectType: .symmetricKey, algorithm: 3, cryptographicLength: 128, activationDate: past)
        spec.processStartDate = later
        let notYet = try await engine.createKey(admin, project: "p", spec)
        let ecb = CipherParameters(blockCipherMode: 2, paddingMethod: 1)
        let block = [UInt8](repeating: 7, count: 16)
        let sealed = try await engine.encrypt(admin, id: notYet.id, ecb, data: block, iv: nil, aad: nil)
        #expect(
            await code {
                _ = try await engine.decrypt(admin, id: notYet.id, ecb, data: sealed.data, iv: nil, aad: nil, tag: nil)
            }
                == .outsideUseWindow, "before Process Start it protects but does not process")
        spec.processStartDate = nil
        spec.protectStopDate = past.addingTimeInterval(1)
        let stopped = try await engine.createKey(admin, project: "p", spec)
        #expect(
            await code { _ = try await engine.encrypt(admin, id: stopped.id, ecb, data: block, iv: nil, aad: nil) }
                == .outsideUseWindow, "past Protect Stop it no longer protects")
    }

    /// ChaCha20-Poly1305 against RFC 8439 §2.8.2 (the test vector also in Wycheproof), and the bare ChaCha20 stream
    /// cipher: with the block counter at 1 it is the AEAD's ciphertext (RFC 8439 §2.8 encrypts from counter 1).
    @Test func chacha20AndChaCha20Poly1305FollowRFC8439() async throws {
        let hex = BlowfishTests.hex
        let key = hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
        let nonce = hex("070000004041424344454647")
        let aad = hex("50515253c0c1c2c3c4c5c6c7")
        let message = Array(
            "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it."
                .utf8)
        let ciphertext = hex(
            "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116"
        )
        let tag = hex("1ae10b594f09e26a7e902ecbd0600691")
        let storage = InMemoryStorage()
        let engine = try await openEngine(storage, key: SymmetricKey(size: .bits256))
        func register(_ algorithm: UInt32) async throws -> ManagedObject {
            let m = try await engine.registerObject(
                admin, project: "p",
                ObjectSpec(
                    objectType: .symmetricKey, algorithm: algorithm, cryptographicLength: 256,
                    activationDate: Date(timeIntervalSince1970: 0)),
                material: SecretBytes(key))
            #expect(m.state == .active)
            return m
        }
        let aead = try await register(0x1E)
        let sealed = try await engine.encrypt(
            admin, id: aead.id, CipherParameters(), data: message, iv: nonce, aad: aad)
        #expect(sealed.data == ciphertext && sealed.tag == tag && sealed.iv == nil, "RFC 8439 §2.8.2")
        let opened = try await engine.decrypt(
            admin, id: aead.id, CipherParameters(), data: ciphertext, iv: nonce, aad: aad, tag: tag)
        #expect(opened.data == message)
        var badTag = tag
        badTag[0] ^= 1
        #expect(
            await code {
                _ = try await engine.decrypt(
                    admin, id: aead.id, CipherParameters(), data: ciphertext, iv: nonce, aad: aad, tag: badTag)
            } == .cryptographicFailure)
        #expect(
            await code {
                _ = try await engine.decrypt(
                    admin, id: aead.id, CipherParameters(), data: ciphertext, iv: nonce, aad: [], tag: tag)
            } == .cryptographicFailure, "the additional data is authenticated")

        let stream = try await register(0x1C)
        var p = CipherParameters()
        p.initialCounterValue = 1
        let streamed = try await engine.encrypt(admin, id: stream.id, p, data: message, iv: nonce, aad: nil)
        #expect(streamed.data == ciphertext && streamed.tag == nil)
        #expect(
            try await engine.decrypt(admin, id: stream.id, p, data: ciphertext, iv: nonce, aad: nil, tag: nil).data
                == message)
        p.initialCounterValue = 0
        #expect(
            try await engine.encrypt(admin, id: stream.id, p, data: message, iv: nonce, aad: nil).data != ciphertext)
        // An 8-byte nonce is the original ChaCha20 (64-bit counter), as KMIP 2.1's CS-BC-M-CHACHA20 cases use it:
        // the all-zero key and nonce give the well-known keystream 76b8e0ad….
        let zeroKey = try await engine.registerObject(
            admin, project: "p",
            ObjectSpec(
                objectType: .symmetricKey, algorithm: 0x1C, cryptographicLength: 256,
                activationDate: Date(timeIntervalSince1970: 0)),
            material: SecretBytes([UInt8](repeating: 0, count: 32)))
        let keystream = try await engine.encrypt(
            admin, id: zeroKey.id, CipherParameters(), data: [UInt8](repeating: 0, count: 64),
            iv: [UInt8](repeating: 0, count: 8), aad: nil)
        #expect(
            keystream.data
                == hex(
                    "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586"
                ))
        // Truncated Poly1305 tags (12–16 bytes) authenticate by their first bytes.
        var twelve = CipherParameters()
        twelve.tagLength = 12
        let short = try await engine.encrypt(admin, id: aead.id, twelve, data: message, iv: nonce, aad: aad)
        #expect(short.tag == Array(tag.prefix(12)))
        #expect(
            try await engine.decrypt(
                admin, id: aead.id, twelve, data: ciphertext, iv: nonce, aad: aad, tag: Array(tag.prefix(12))
            ).data == message)
        #expect(
            await code {
                _ = try await engine.decrypt(
                    admin, id: aead.id, twelve, data: ciphertext, iv: nonce, aad: aad, tag: Array(badTag.prefix(12)))
            } == .cryptographicFailure)
        twelve.tagLength = 1
        #expect(
            await code { _ = try await engine.encrypt(admin, id: aead.id, twelve, data: message, iv: nonce, aad: aad) }
                == .invalidArgument)
        #expect(
            await code {
                _ = try await engine.encrypt(admin, id: stream.id, p, data: message, iv: [1, 2, 3], aad: nil)
            }
                == .invalidArgument, "the nonce is 8 or 12 bytes")

        // Created keys: 256 bits only; without a nonce the server makes one and returns it.
        var spec = ObjectSpec(
            objectType: .symmetricKey, algorithm: 0x1E, cryptographicLength: 256,
            activationDate: Date(timeIntervalSince1970: 0))
        let made = try await engine.createKey(admin, project: "p", spec)
        let fresh = try await engine.encrypt(admin, id: made.id, CipherParameters(), data: message, iv: nil, aad: nil)
        let freshNonce = try #require(fresh.iv)
        #expect(freshNonce.count == 12)
        #expect(
            try await engine.decrypt(
                admin, id: made.id, CipherParameters(), data: fresh.data, iv: freshNonce, aad: nil, tag: fresh.tag
            ).data == message)
        spec.cryptographicLength = 128
        #expect(await code { _ = try await engine.createKey(admin, project: "p", spec) } == .invalidArgument)
    }

    @Test func usageLimits() async throws {
        let storage = InMemoryStorage()
        let engine = try await openEngine(storage, key: SymmetricKey(size: .bits256))
        var spec = ObjectSpec(
            objectType: .symmetricKey, algorithm: 3, cryptographicLength: 128,
            activationDate: Date(timeIntervalSince1970: 0))
        spec.usageLimits = UsageLimits(total: 32, count: 32, unit: 1)
        let k = try await engine.createKey(admin, project: "p", spec)
        let ecb = CipherParameters(blockCipherMode: 2, paddingMethod: 1)
        let c = try await engine.encrypt(
            admin, id: k.id, ecb, data: [UInt8](repeating: 7, count: 16), iv: nil, aad: nil)
        _ = try await engine.decrypt(admin, id: k.id, ecb, data: c.data, iv: nil, aad: nil, tag: nil)
        #expect(try await engine.objectAttributes(admin, id: k.id).usageLimits?.count == 16)
        _ = try await engine.allocateUsage(admin, id: k.id, amount: 8)
        #expect(
            await code {
                _ = try await engine.encrypt(
                    admin, id: k.id, ecb, data: [UInt8](repeating: 7, count: 16), iv: nil, aad: nil)
            } == .permissionDenied)
        #expect(await code { _ = try await engine.allocateUsage(admin, id: k.id, amount: 9) } == .permissionDenied)
        _ = try await engine.allocateUsage(admin, id: k.id, amount: 8)
        let record = try #require(
            try await storage.withTransaction { tx in try await tx.get(kind: "kms-object", id: k.id) })
        #expect(
            try JSONDecoder().decode(ManagedObjectBody.self, from: try StoredJSON.unpack(record.body)).meta.usageLimits?
                .count == 0)
        // Per operation: two MACs, then none.
        var hmac = ObjectSpec(
            objectType: .symmetricKey, algorithm: 9, cryptographicLength: 256,
            activationDate: Date(timeIntervalSince1970: 0))
        hmac.usageLimits = UsageLimits(total: 2, count: 2, unit: 2)
        let h = try await engine.createKey(admin, project: "p", hmac)
        for _ in 0..<2 {
            _ = try await engine.mac(admin, id: h.id, CipherParameters(), data: [UInt8](repeating: 1, count: 1000))
        }
        #expect(
            await code { _ = try await engine.mac(admin, id: h.id, CipherParameters(), data: [1]) } == .permissionDenied
        )
        let unlimited = try await engine.createKey(
            admin, project: "p",
            ObjectSpec(
                objectType: .symmetricKey, algorithm: 3, cryptographicLength: 128,
                activationDate: Date(timeIntervalSince1970: 0)))
        #expect(await code { _ = try await engine.allocateUsage(admin, id: unlimited.id, amount: 1) } == .wrongState)
    }

    /// A registered X.509 certificate's names, serial number and length are read from it; a "certificate" that is
    /// not one is refused.
    @Test func registeredCertificatesExposeTheirFacts() async throws {
        let engine = try await openEngine(InMemoryStorage(), key: SymmetricKey(size: .bits256))
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName {
            CountryName("NZ")
            OrganizationName("Gatehouse Test")
            CommonName("kmip.example")
        }
        let issuer = try DistinguishedName { CommonName("Test CA") }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(bytes: [0x01, 0x02, 0x03]),
            publicKey: .init(key.publicKey),
            notValidBefore: Date() - 60, notValidAfter: Date() + 3600, issuer: issuer, subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256, extensions: Certificate.Extensions(), issuerPrivateKey: .init(key))
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        let der = serializer.serializedBytes
        let m = try await engine.registerObject(
            admin, project: "p", ObjectSpec(objectType: .certificate), material: SecretBytes(der))
        let facts = try #require(m.certificate)
        #expect(facts.length == der.count && facts.serialNumber == [1, 2, 3])
        #expect(facts.subject.map { "\($0.type)=\($0.value)" } == ["C=NZ", "O=Gatehouse Test", "CN=kmip.example"])
        #expect(facts.issuer.map { "\($0.type)=\($0.value)" } == ["CN=Test CA"])
        #expect(
            await code {
                _ = try await engine.registerObject(
                    admin, project: "p", ObjectSpec(objectType: .certificate),
                    material: SecretBytes([0x30, 0x03, 1, 2, 3]))
            } == .invalidArgument)
    }

    /// Streamed GCM and CBC give what the one-shot operations give; the stream is its caller's, a wrong tag fails at
    /// the end, and a finished stream is gone.
    @Test func streamedEncryptAndDecrypt() async throws {
        let engine = try await openEngine(InMemoryStorage(), key: SymmetricKey(size: .bits256))
        let k = try await engine.createKey(
            admin, project: "p",
            ObjectSpec(
                objectType: .symmetricKey, algorithm: 3, cryptographicLength: 256,
                activationDate: Date(timeIntervalSince1970: 0)))
        let message = (0..<100).map { UInt8($0) }
        let iv = [UInt8](repeating: 9, count: 12)
        let aad: [UInt8] = [1, 2, 3]
        let gcm = CipherParameters(blockCipherMode: 9)
        let whole = try await engine.encrypt(admin, id: k.id, gcm, data: message, iv: iv, aad: aad)
        let first = try await engine.cipherStep(
            admin, id: k.id, encrypt: true, gcm, data: Array(message[..<37]), iv: iv, aad: aad, tag: nil,
            correlation: nil, final: false)
        let cv = try #require(first.correlation)
        let intruder = CallContext(
            principal: Principal(method: .system, id: "someone-else", name: "someone-else"), frontEnd: "kmip")
        #expect(
            await code {
                _ = try await engine.cipherStep(
                    intruder, id: k.id, encrypt: true, gcm, data: [1], iv: nil, aad: nil, tag: nil, correlation: cv,
                    final: false)
            } == .notFound, "another caller cannot continue the stream")
        let middle = try await engine.cipherStep(
            admin, id: k.id, encrypt: true, gcm, data: Array(message[37..<80]), iv: nil, aad: nil, tag: nil,
            correlation: cv, final: false)
        #expect(middle.correlation == nil, "the correlation value is given once")
        let last = try await engine.cipherStep(
            admin, id: k.id, encrypt: true, gcm, data: Array(message[80...]), iv: nil, aad: nil, tag: nil,
            correlation: cv, final: true)
        #expect(first.result.data + middle.result.data + last.result.data == whole.data)
        #expect(last.result.tag == whole.tag)
        #expect(
            await code {
                _ = try await engine.cipherStep(
                    admin, id: k.id, encrypt: true, gcm, data: [1], iv: nil, aad: nil, tag: nil, correlation: cv,
                    final: true)
            } == .notFound, "finished")
        // Decrypting in two steps with the right tag, then with a wrong one.
        for (tag, ok) in [(whole.tag, true), (whole.tag.map { t in [t[0] ^ 1] + t.dropFirst() }, false)] {
            let d1 = try await engine.cipherStep(
                admin, id: k.id, encrypt: false, gcm, data: Array(whole.data[..<50]), iv: iv, aad: aad, tag: nil,
                correlation: nil, final: false)
            let cv2 = try #require(d1.correlation)
            if ok {
                let d2 = try await engine.cipherStep(
                    admin, id: k.id, encrypt: false, gcm, data: Array(whole.data[50...]), iv: nil, aad: nil, tag: tag,
                    correlation: cv2, final: true)
                #expect(d1.result.data + d2.result.data == message)
            } else {
                #expect(
                    await code {
                        _ = try await engine.cipherStep(
                            admin, id: k.id, encrypt: false, gcm, data: Array(whole.data[50...]), iv: nil, aad: nil,
                            tag: tag, correlation: cv2, final: true)
                    } == .cryptographicFailure)
            }
        }
        // CBC with PKCS#5 padding: the same bytes as one-shot CBC.
        let cbc = CipherParameters(blockCipherMode: 1, paddingMethod: 3)
        let iv16 = [UInt8](repeating: 4, count: 16)
        let oneShot = try await engine.encrypt(admin, id: k.id, cbc, data: message, iv: iv16, aad: nil)
        let c1 = try await engine.cipherStep(
            admin, id: k.id, encrypt: true, cbc, data: Array(message[..<20]), iv: iv16, aad: nil, tag: nil,
            correlation: nil, final: false)
        let c2 = try await engine.cipherStep(
            admin, id: k.id, encrypt: true, cbc, data: Array(message[20...]), iv: nil, aad: nil, tag: nil,
            correlation: try #require(c1.correlation), final: true)
        #expect(c1.result.data + c2.result.data == oneShot.data)
    }

    /// Undo (KMIP Batch Error Continuation Option): snapshots put objects back, objects the batch made are removed,
    /// destroyed material comes back sealed as it was.
    @Test func undoRestoresAndDiscards() async throws {
        let storage = InMemoryStorage()
        let engine = try await openEngine(storage, key: SymmetricKey(size: .bits256))
        let spec = ObjectSpec(objectType: .symmetricKey, algorithm: 3, cryptographicLength: 128, names: ["kept"])
        let k = try await engine.createKey(admin, project: "p", spec)
        let (_, before) = try await engine.getObject(admin, id: k.id)
        let snapshot = try await engine.snapshotObject(admin, id: k.id)
        _ = try await engine.activateObject(admin, id: k.id)
        _ = try await engine.editObjectAttributes(admin, id: k.id) { $0.names = ["renamed"] }
        let made = try await engine.createKey(
            admin, project: "p", ObjectSpec(objectType: .symmetricKey, algorithm: 3, cryptographicLength: 128))
        try await engine.undoObjectChanges(admin, restore: [snapshot], discard: [made.id])
        let back = try await engine.objectAttributes(admin, id: k.id)
        #expect(back.state == .preActive && back.names == ["kept"])
        #expect(await code { _ = try await engine.objectAttributes(admin, id: made.id) } == .notFound)
        // A destroyed key's material returns with the snapshot.
        let snap2 = try await engine.snapshotObject(admin, id: k.id)
        _ = try await engine.destroyObject(admin, id: k.id)
        #expect(try await engine.getObject(admin, id: k.id).1 == nil)
        try await engine.undoObjectChanges(admin, restore: [snap2], discard: [])
        #expect(try await engine.getObject(admin, id: k.id).1 == before)
        let refused = await code { _ = try await engine.undoObjectChanges(stranger, restore: [snap2], discard: [k.id]) }
        #expect(refused == .unauthenticated, "an unknown caller: \(String(describing: refused))")
        #expect(try await engine.objectAttributes(admin, id: k.id).state == .preActive, "untouched")
    }

    /// EC (P-256/384/521) and Ed25519 key pairs: PKCS#8 / SubjectPublicKeyInfo material that swift-crypto reads,
    /// signatures it verifies, and tampered data or another key's signature refused.
    @Test func ellipticCurveKeyPairsSignAndVerify() async throws {
        let engine = try await openEngine(InMemoryStorage(), key: SymmetricKey(size: .bits256))
        let active = Date(timeIntervalSince1970: 0)
        let message = Array("the message".utf8)
        for (algorithm, length) in [(UInt32(6), Int32(256)), (6, 384), (0x1A, 521), (0x37, 255)] {
            let (priv, pub) = try await engine.createKeyPair(
                admin, project: "p", algorithm: algorithm, length: length,
                privateSpec: ObjectSpec(objectType: .privateKey, activationDate: active),
                publicSpec: ObjectSpec(objectType: .publicKey, activationDate: active))
            #expect(priv.keyFormatType == 4 && pub.keyFormatType == 5)
            let signature = try await engine.sign(admin, id: priv.id, SignatureParameters(), data: message)
            #expect(
                try await engine.verify(admin, id: pub.id, SignatureParameters(), data: message, signature: signature))
            #expect(
                try await engine.verify(
                    admin, id: pub.id, SignatureParameters(), data: message + [0], signature: signature) == false)
            let publicDER = try #require(try await engine.getObject(admin, id: pub.id).1).bytes
            switch length {
            case 256:
                let key = try P256.Signing.PublicKey(derRepresentation: publicDER)
                #expect(
                    key.isValidSignature(
                        try P256.Signing.ECDSASignature(derRepresentation: signature), for: SHA256.hash(data: message)))
                // Another hash, asked for: SHA-384 over P-256.
                let s384 = try await engine.sign(
                    admin, id: priv.id, SignatureParameters(hashingAlgorithm: 7), data: message)
                #expect(
                    key.isValidSignature(
                        try P256.Signing.ECDSASignature(derRepresentation: s384), for: SHA384.hash(data: message)))
            case 384:
                let key = try P384.Signing.PublicKey(derRepresentation: publicDER)
                #expect(
                    key.isValidSignature(
                        try P384.Signing.ECDSASignature(derRepresentation: signature), for: SHA384.hash(data: message)))
            case 521:
                let key = try P521.Signing.PublicKey(derRepresentation: publicDER)
                #expect(
                    key.isValidSignature(
                        try P521.Signing.ECDSASignature(derRepresentation: signature), for: SHA512.hash(data: message)))
            default:
                #expect(publicDER.count == 44)
                let key = try Curve25519.Signing.PublicKey(rawRepresentation: publicDER.suffix(32))
                #expect(key.isValidSignature(signature, for: message))
            }
        }
        #expect(
            await code {
                _ = try await engine.createKeyPair(
                    admin, project: "p", algorithm: 6, length: 200, privateSpec: ObjectSpec(objectType: .privateKey),
                    publicSpec: ObjectSpec(objectType: .publicKey))
            } == .invalidArgument)
    }

    /// ReKey: new material, the old attributes, the names moved, links both ways, dates shifted by the offset.
    @Test func rekeyReplacesASymmetricKey() async throws {
        let engine = try await openEngine(InMemoryStorage(), key: SymmetricKey(size: .bits256))
        let now = Date()
        var spec = ObjectSpec(
            objectType: .symmetricKey, algorithm: 3, cryptographicLength: 256, names: ["disk-key"],
            activationDate: now - 100)
        spec.deactivationDate = now + 1000
        let old = try await engine.createKey(admin, project: "p", spec)
        let fresh = try await engine.rekey(admin, id: old.id, offset: 3600)
        #expect(
            fresh.id != old.id && fresh.names == ["disk-key"] && fresh.algorithm == 3
                && fresh.cryptographicLength == 256)
        #expect(fresh.state == .preActive, "activation an hour from now")
        #expect(abs((fresh.activationDate ?? .distantPast).timeIntervalSince(now + 3600)) < 5)
        #expect(
            abs((fresh.deactivationDate ?? .distantPast).timeIntervalSince(now + 3600 + 1100)) < 5,
            "same distance to activation")
        let before = try await engine.objectAttributes(admin, id: old.id)
        #expect(before.names.isEmpty && before.links == [ObjectLink(type: ObjectLink.replacementObject, id: fresh.id)])
        #expect(fresh.links == [ObjectLink(type: ObjectLink.replacedObject, id: old.id)])
        #expect(try await engine.getObject(admin, id: fresh.id).1 != engine.getObject(admin, id: old.id).1)
        #expect(try await engine.locateObjects(admin, project: "p", LocateFilter(name: "disk-key")) == [fresh.id])
        // Without an offset the old dates stay.
        let again = try await engine.rekey(admin, id: fresh.id, offset: nil)
        #expect(again.activationDate == fresh.activationDate)
        let pair = try await engine.createKeyPair(
            admin, project: "p", algorithm: 6, length: 256, privateSpec: ObjectSpec(objectType: .privateKey),
            publicSpec: ObjectSpec(objectType: .publicKey))
        #expect(await code { _ = try await engine.rekey(admin, id: pair.0.id, offset: nil) } == .invalidArgument)
    }

    /// Create Key Pair links the keys to each other; ReKey Key Pair replaces both with fresh material of the same
    /// kind, moves the names and links old and new both ways; the new pair signs and verifies.
    @Test func rekeyKeyPairReplacesBothKeys() async throws {
        let engine = try await openEngine(InMemoryStorage(), key: SymmetricKey(size: .bits256))
        let (oldPrivate, oldPublic) = try await engine.createKeyPair(
            admin, project: "p", algorithm: 6, length: 256,
            privateSpec: ObjectSpec(objectType: .privateKey, names: ["signer"]),
            publicSpec: ObjectSpec(objectType: .publicKey, names: ["signer-pub"]))
        #expect(oldPrivate.links == [ObjectLink(type: ObjectLink.publicKey, id: oldPublic.id)])
        #expect(oldPublic.links == [ObjectLink(type: ObjectLink.privateKey, id: oldPrivate.id)])
        _ = try await engine.activateObject(admin, id: oldPrivate.id)
        let (newPrivate, newPublic) = try await engine.rekeyKeyPair(admin, privateKeyID: oldPrivate.id, offset: 0)
        #expect(newPrivate.objectType == .privateKey && newPublic.objectType == .publicKey)
        #expect(
            newPrivate.algorithm == 6 && newPrivate.cryptographicLength == 256 && newPublic.cryptographicLength == 256)
        #expect(newPrivate.names == ["signer"] && newPublic.names == ["signer-pub"])
        #expect(
            Set(newPrivate.links ?? []) == [
                ObjectLink(type: ObjectLink.publicKey, id: newPublic.id),
                ObjectLink(type: ObjectLink.replacedObject, id: oldPrivate.id),
            ])
        #expect(
            Set(newPublic.links ?? []) == [
                ObjectLink(type: ObjectLink.privateKey, id: newPrivate.id),
                ObjectLink(type: ObjectLink.replacedObject, id: oldPublic.id),
            ])
        let oldPrivateNow = try await engine.objectAttributes(admin, id: oldPrivate.id)
        let oldPublicNow = try await engine.objectAttributes(admin, id: oldPublic.id)
        #expect(
            oldPrivateNow.names.isEmpty
                && oldPrivateNow.links?.contains(ObjectLink(type: ObjectLink.replacementObject, id: newPrivate.id))
                    == true
        )
        #expect(
            oldPublicNow.names.isEmpty
                && oldPublicNow.links?.contains(ObjectLink(type: ObjectLink.replacementObject, id: newPublic.id))
                    == true
        )
        #expect(
            try await engine.getObject(admin, id: newPublic.id).1 != engine.getObject(admin, id: oldPublic.id).1,
            "fresh material")
        // Offset 0: active at once; the new pair signs and verifies, the old public key does not accept its signature.
        #expect(newPrivate.state == .active && newPublic.state == .active)
        _ = try await engine.activateObject(admin, id: oldPublic.id)
        let signature = try await engine.sign(
            admin, id: newPrivate.id, SignatureParameters(), data: Array("payload".utf8))
        #expect(
            try await engine.verify(
                admin, id: newPublic.id, SignatureParameters(), data: Array("payload".utf8), signature: signature))
        #expect(
            try await engine.verify(
                admin, id: oldPublic.id, SignatureParameters(), data: Array("payload".utf8), signature: signature)
                == false)
        #expect(try await engine.locateObjects(admin, project: "p", LocateFilter(name: "signer")) == [newPrivate.id])
        // Only private keys; a symmetric key is refused.
        let k = try await engine.createKey(
            admin, project: "p", ObjectSpec(objectType: .symmetricKey, algorithm: 3, cryptographicLength: 256))
        #expect(
            await code { _ = try await engine.rekeyKeyPair(admin, privateKeyID: k.id, offset: nil) } == .invalidArgument
        )
        #expect(
            await code { _ = try await engine.rekeyKeyPair(admin, privateKeyID: newPublic.id, offset: nil) }
                == .invalidArgument)
    }

    /// Streamed MAC and Hash: the pieces give the one-shot answer; a stream belongs to its caller (and key) and ends
    /// with its last step.
    @Test func streamedMACAndHashMatchOneShot() async throws {
        let engine = try await openEngine(InMemoryStorage(), key: SymmetricKey(size: .bits256))
        let k = try await engine.createKey(
            admin, project: "p",
            ObjectSpec(
                objectType: .symmetricKey, algorithm: 9, cryptographicLength: 256,
                usageMask: UsageMask.macGenerate.rawValue))
        _ = try await engine.activateObject(admin, id: k.id)
        let pieces: [[UInt8]] = [Array("first ".utf8), Array("second ".utf8), Array("third".utf8)]
        let whole = pieces.flatMap { $0 }
        let (none, correlation) = try await engine.macStep(
            admin, id: k.id, CipherParameters(), data: pieces[0], correlation: nil, final: false)
        #expect(none == nil)
        let c = try #require(correlation)
        let (middle, same) = try await engine.macStep(
            admin, id: k.id, CipherParameters(), data: pieces[1], correlation: c, final: false)
        #expect(middle == nil && same == c)
        // Another caller cannot continue it.
        #expect(
            await code {
                _ = try await engine.macStep(
                    stranger, id: k.id, CipherParameters(), data: [], correlation: c, final: true)
            } != nil)
        let (mac, after) = try await engine.macStep(
            admin, id: k.id, CipherParameters(), data: pieces[2], correlation: c, final: true)
        #expect(after == nil)
        #expect(mac == (try await engine.mac(admin, id: k.id, CipherParameters(), data: whole)))
        #expect(
            await code {
                _ = try await engine.macStep(admin, id: k.id, CipherParameters(), data: [], correlation: c, final: true)
            } == .notFound, "ended")

        let (_, h) = try await engine.hashStep(admin, algorithm: 6, data: pieces[0], correlation: nil, final: false)
        let hc = try #require(h)
        #expect(
            await code {
                _ = try await engine.macStep(
                    admin, id: k.id, CipherParameters(), data: [], correlation: hc, final: true)
            } == .notFound, "a hash stream is not a MAC stream")
        _ = try await engine.hashStep(admin, algorithm: 6, data: pieces[1], correlation: hc, final: false)
        let (digest, _) = try await engine.hashStep(admin, algorithm: 6, data: pieces[2], correlation: hc, final: true)
        #expect(digest == Array(SHA256.hash(data: whole)))
        let (oneStep, noCorrelation) = try await engine.hashStep(
            admin, algorithm: 8, data: whole, correlation: nil, final: true)
        #expect(oneStep == Array(SHA512.hash(data: whole)) && noCorrelation == nil)
        #expect(
            await code {
                _ = try await engine.hashStep(admin, algorithm: 99, data: whole, correlation: nil, final: true)
            } == .invalidArgument)
        let anonymous = CallContext(principal: .anonymous, frontEnd: "test")
        #expect(
            await code {
                _ = try await engine.hashStep(anonymous, algorithm: 6, data: whole, correlation: nil, final: false)
            } == .unauthenticated)
    }

    @Test func lifecycleRules() async throws {
        let engine = try await openEngine(InMemoryStorage(), key: SymmetricKey(size: .bits256))
        let k = try await engine.createKey(
            admin, project: "p", ObjectSpec(objectType: .symmetricKey, algorithm: 3, cryptographicLength: 256))
        #expect(
            await code {
                _ = try await engine.encrypt(admin, id: k.id, CipherParameters(), data: [1], iv: nil, aad: nil)
            } == .wrongState)
        _ = try await engine.activateObject(admin, id: k.id)
        #expect(await code { _ = try await engine.activateObject(admin, id: k.id) } == .wrongState)
        #expect(await code { _ = try await engine.destroyObject(admin, id: k.id) } == .wrongState)
        // GCM round trip with AAD; a flipped tag or other AAD fails as a cryptographic failure.
        let r = try await engine.encrypt(
            admin, id: k.id, CipherParameters(blockCipherMode: 9), data: Array("hello".utf8), iv: nil, aad: [7])
        let iv = try #require(r.iv)
        let tag = try #require(r.tag)
        let back = try await engine.decrypt(
            admin, id: k.id, CipherParameters(blockCipherMode: 9), data: r.data, iv: iv, aad: [7], tag: tag)
        #expect(back.data == Array("hello".utf8))
        #expect(
            await code {
                _ = try await engine.decrypt(
                    admin, id: k.id, CipherParameters(blockCipherMode: 9), data: r.data, iv: iv, aad: [8], tag: tag)
            } == .cryptographicFailure)
        // Compromise: Compromised, then Destroyed Compromised.
        let c = try await engine.revokeObject(admin, id: k.id, reason: 2, message: "leaked", compromiseOccurrence: nil)
        #expect(c.state == .compromised && c.compromiseDate != nil)
        #expect(try await engine.destroyObject(admin, id: k.id).state == .destroyedCompromised)
        #expect(
            await code {
                _ = try await engine.createKey(
                    admin, project: "p", ObjectSpec(objectType: .symmetricKey, algorithm: 3, cryptographicLength: 100))
            } == .invalidArgument)
        #expect(await code { _ = try await engine.getObject(admin, id: "nope") } == .notFound)
    }

    @Test func locateFiltersAndPages() async throws {
        let engine = try await openEngine(InMemoryStorage(), key: SymmetricKey(size: .bits256))
        for i in 0..<5 {
            _ = try await engine.createKey(
                admin, project: "p",
                ObjectSpec(
                    objectType: .symmetricKey, algorithm: 3, cryptographicLength: i % 2 == 0 ? 128 : 256,
                    names: ["n\(i)"]))
        }
        #expect(try await engine.locateObjects(admin, project: "p", LocateFilter(name: "n3")).count == 1)
        #expect(try await engine.locateObjects(admin, project: "p", LocateFilter(cryptographicLength: 128)).count == 3)
        #expect(
            try await engine.locateObjects(admin, project: "p", LocateFilter(maximumItems: 2, offsetItems: 1)).count
                == 2)
        #expect(try await engine.locateObjects(admin, project: "p", LocateFilter(state: .active)).isEmpty)
        #expect(try await engine.locateObjects(admin, project: "p1", LocateFilter()).isEmpty)
        // Each Locate is audited with the number it found (an enumeration of keys leaves a record).
        let located = try await engine.auditEvents(admin, cursor: nil, limit: 1000).items.map(\.event.event)
            .filter { $0.type == "kms.locate" }
        #expect(located.map { $0.metadata["located"] } == ["1", "3", "2", "0", "0"])
    }
}
