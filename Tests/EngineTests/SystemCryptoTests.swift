import Crypto
import Foundation
import SystemCrypto
import Testing
import _CryptoExtras

/// The system-OpenSSL primitives against swift-crypto (an independent implementation) where both apply, and their
/// own properties where only they do.
@Suite struct SystemCryptoTests {
    @Test func gcmMatchesSwiftCryptoAndTruncatesTags() throws {
        let key = SymmetricKey(size: .bits256)
        let raw = key.withUnsafeBytes { Array($0) }
        let iv = (0..<12).map { UInt8($0) }
        let aad = Array("header".utf8)
        let plaintext = Array("attack at dawn, bring snacks".utf8)
        let reference = try AES.GCM.seal(plaintext, using: key, nonce: AES.GCM.Nonce(data: iv), authenticating: aad)
        let ours = try #require(AESGCMAnyLength.seal(key: raw, iv: iv, aad: aad, plaintext: plaintext, tagLength: 16))
        #expect(ours.ciphertext == Array(reference.ciphertext) && ours.tag == Array(reference.tag))
        // A truncated tag is the full tag's prefix, and opens.
        let short = try #require(AESGCMAnyLength.seal(key: raw, iv: iv, aad: aad, plaintext: plaintext, tagLength: 12))
        #expect(short.tag == Array(reference.tag.prefix(12)))
        #expect(
            AESGCMAnyLength.open(key: raw, iv: iv, aad: aad, ciphertext: short.ciphertext, tag: short.tag) == plaintext)
        // An 8-byte IV round-trips; a flipped bit, another AAD or another IV does not open.
        let iv8 = Array(iv.prefix(8))
        let box = try #require(AESGCMAnyLength.seal(key: raw, iv: iv8, aad: aad, plaintext: plaintext, tagLength: 16))
        #expect(
            AESGCMAnyLength.open(key: raw, iv: iv8, aad: aad, ciphertext: box.ciphertext, tag: box.tag) == plaintext)
        var flipped = box.ciphertext
        flipped[0] ^= 1
        #expect(AESGCMAnyLength.open(key: raw, iv: iv8, aad: aad, ciphertext: flipped, tag: box.tag) == nil)
        #expect(AESGCMAnyLength.open(key: raw, iv: iv8, aad: [], ciphertext: box.ciphertext, tag: box.tag) == nil)
        #expect(AESGCMAnyLength.open(key: raw, iv: iv, aad: aad, ciphertext: box.ciphertext, tag: box.tag) == nil)
        #expect(
            AESGCMAnyLength.seal(key: Array(raw.prefix(20)), iv: iv, aad: [], plaintext: plaintext, tagLength: 16)
                == nil)
        // Nothing to encrypt, only AAD to authenticate (GMAC): no ciphertext, swift-crypto's tag.
        let gmac = try #require(AESGCMAnyLength.seal(key: raw, iv: iv8, aad: aad, plaintext: [], tagLength: 15))
        let referenceGMAC = try AES.GCM.seal([UInt8](), using: key, nonce: AES.GCM.Nonce(data: iv), authenticating: aad)
        #expect(gmac.ciphertext.isEmpty && gmac.tag.count == 15)
        let full = try #require(AESGCMAnyLength.seal(key: raw, iv: iv, aad: aad, plaintext: [], tagLength: 16))
        #expect(full.ciphertext.isEmpty && full.tag == Array(referenceGMAC.tag))
        #expect(AESGCMAnyLength.open(key: raw, iv: iv8, aad: aad, ciphertext: [], tag: gmac.tag) == [])
    }

    @Test func rsaSignaturesInteroperateWithSwiftCrypto() throws {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let publicDER = Array(key.publicKey.derRepresentation)
        let privateDER = Array(key.derRepresentation)
        let message = Array("sign me".utf8)
        // Ours verify swift-crypto's (PSS with a digest-long salt, PKCS#1 v1.5), and the reverse.
        let pss = try key.signature(for: SHA256.hash(data: message), padding: .PSS)
        #expect(
            RSASignatures.verify(
                publicKeyDER: publicDER, hash: 256, pss: true, message: message, signature: Array(pss.rawRepresentation)
            ) == true)
        let v15 = try key.signature(for: SHA384.hash(data: message), padding: .insecurePKCS1v1_5)
        #expect(
            RSASignatures.verify(
                publicKeyDER: publicDER, hash: 384, pss: false, message: message,
                signature: Array(v15.rawRepresentation)) == true)
        #expect(
            RSASignatures.verify(
                publicKeyDER: publicDER, hash: 256, pss: false, message: message,
                signature: Array(v15.rawRepresentation)) == false)
        let ours = try #require(RSASignatures.sign(privateKeyDER: privateDER, hash: 512, pss: true, message: message))
        #expect(
            key.publicKey.isValidSignature(
                .init(rawRepresentation: ours), for: SHA512.hash(data: message), padding: .PSS))
        // SHA-1 (KMIP CS-AC): round trip; another message does not verify; garbage keys are errors, not "invalid".
        let sha1 = try #require(RSASignatures.sign(privateKeyDER: privateDER, hash: 1, pss: false, message: message))
        #expect(
            RSASignatures.verify(publicKeyDER: publicDER, hash: 1, pss: false, message: message, signature: sha1)
                == true)
        #expect(
            RSASignatures.verify(publicKeyDER: publicDER, hash: 1, pss: false, message: [1], signature: sha1) == false)
        #expect(
            RSASignatures.verify(publicKeyDER: [1, 2], hash: 1, pss: false, message: message, signature: sha1) == nil)
    }

    @Test func oaepInteroperatesWithSwiftCrypto() throws {
        // swift-crypto's OAEP (SHA-256, MGF1-SHA-256, no label) decrypts what ours encrypts, and the reverse.
        let key = try _RSA.Encryption.PrivateKey(keySize: .bits2048)
        let publicDER = Array(key.publicKey.derRepresentation)
        let privateDER = Array(key.derRepresentation)
        let message = Array("a key to wrap".utf8)
        let ours = try #require(
            RSAOAEP.encrypt(publicKeyDER: publicDER, hash: 256, mgfHash: 256, label: [], plaintext: message))
        #expect(Array(try key.decrypt(ours, padding: .PKCS1_OAEP_SHA256)) == message)
        let theirs = try key.publicKey.encrypt(message, padding: .PKCS1_OAEP_SHA256)
        #expect(
            RSAOAEP.decrypt(privateKeyDER: privateDER, hash: 256, mgfHash: 256, label: [], ciphertext: Array(theirs))
                == message)
        // SHA-384 with MGF1-SHA-256 and a label: round trip; the wrong label or hash does not decrypt.
        let labelled = try #require(
            RSAOAEP.encrypt(publicKeyDER: publicDER, hash: 384, mgfHash: 256, label: [1, 2, 3], plaintext: message))
        #expect(
            RSAOAEP.decrypt(privateKeyDER: privateDER, hash: 384, mgfHash: 256, label: [1, 2, 3], ciphertext: labelled)
                == message)
        #expect(
            RSAOAEP.decrypt(privateKeyDER: privateDER, hash: 384, mgfHash: 256, label: [9], ciphertext: labelled) == nil
        )
        #expect(
            RSAOAEP.decrypt(privateKeyDER: privateDER, hash: 512, mgfHash: 256, label: [1, 2, 3], ciphertext: labelled)
                == nil)
        #expect(
            RSAOAEP.encrypt(publicKeyDER: [1, 2, 3], hash: 256, mgfHash: 256, label: [], plaintext: message) == nil)
    }
}
