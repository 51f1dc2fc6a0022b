import Foundation
import StorageAPI
import StorageS3
import TestSupport
import Testing

/// SigV4 against signatures that other implementations computed for the same requests.
@Suite struct S3SigningTests {
    /// AWS's own example ("Signature Calculations for the Authorization Header", GET Object with a Range header).
    @Test func awsPublishedExample() {
        let signer = SigV4(
            credentials: .init(
                accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            region: "us-east-1")
        let headers = signer.sign(
            method: "GET", host: "examplebucket.s3.amazonaws.com", path: "/test.txt", query: [],
            headers: [("Range", "bytes=0-9")],
            payloadHash: SigV4.emptyPayloadHash, date: Date(timeIntervalSince1970: 1_369_353_600))
        let auth = headers.first { $0.0 == "authorization" }?.1
        #expect(
            auth == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        #expect(headers.contains { $0 == ("x-amz-date", "20130524T000000Z") })
    }

    /// Signatures botocore (S3SigV4Auth) computed at 2026-12-06T09:30:00Z: a listing whose query needs encoding (a
    /// prefix with `/` and a space, a continuation token with `+` and `=`), and a PUT with a session token.
    @Test func matchesBotocore() {
        let signer = SigV4(
            credentials: .init(accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            region: "eu-west-3")
        let date = Date(timeIntervalSince1970: 1_796_549_400)
        let list = signer.sign(
            method: "GET", host: "127.0.0.1:9000", path: "/gh-recordings",
            query: [("list-type", "2"), ("prefix", "site/a b/"), ("continuation-token", "1+2==")],
            payloadHash: SigV4.emptyPayloadHash, date: date)
        #expect(
            list.first { $0.0 == "authorization" }?.1.hasSuffix(
                "SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=e082f0e4b24bc5354ff22832e1771272534a4607b827ea9c76ee0ab6d58ca477"
            ) == true,
            "\(list)")
        #expect(
            SigV4.canonicalQuery([("list-type", "2"), ("prefix", "site/a b/")]) == "list-type=2&prefix=site%2Fa%20b%2F")

        let token = SigV4(
            credentials: .init(
                accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                sessionToken: "FQoGZXIvYXdzEXAMPLE//token+x="),
            region: "eu-west-3")
        let body = Array("hello, recording".utf8)
        let put = token.sign(
            method: "PUT", host: "127.0.0.1:9000", path: "/gh-recordings/site/0f9c/0000000000001048576", query: [],
            payloadHash: SigV4.payloadHash(body), date: date)
        #expect(put.contains { $0 == ("x-amz-security-token", "FQoGZXIvYXdzEXAMPLE//token+x=") })
        #expect(
            put.first { $0.0 == "authorization" }?.1.hasSuffix(
                "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token, "
                    + "Signature=64b46c36dd6aa91da0fcc8ade50576226205447429a13f9a8d70f33498562fac") == true,
            "\(put)")
    }

    @Test func credentialsFromTheEnvironmentOrAFile() throws {
        let dir = try TemporaryDirectory()
        let file = dir.path + "/credentials"
        try
            "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s1\n\n[recordings]\naws_access_key_id=AKIDREC\naws_secret_access_key=s2\naws_session_token=t2\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        #expect(
            try S3Credentials.resolve(
                environment: ["AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "s0"], file: file,
                profile: "default")
                == .init(accessKeyId: "AKIDENV", secretAccessKey: "s0"))
        #expect(
            try S3Credentials.resolve(environment: [:], file: file, profile: "recordings")
                == .init(accessKeyId: "AKIDREC", secretAccessKey: "s2", sessionToken: "t2"))
        #expect(
            try S3Credentials.resolve(environment: [:], file: file, profile: "default").accessKeyId == "AKIDDEFAULT")
        for (env, path, profile, message) in [
            ([String: String](), nil as String?, "default", "no S3 credentials: set AWS_ACCESS_KEY_ID"),
            ([:], file, "missing", "has no aws_access_key_id and aws_secret_access_key under [missing]"),
            ([:], dir.path + "/nope", "default", "cannot read the S3 credentials file"),
        ] {
            do {
                _ = try S3Credentials.resolve(environment: env, file: path, profile: profile)
                Issue.record("credentials resolved for \(profile)")
            } catch let e as StorageError {
                #expect(e.detail.contains(message), "\(e.detail)")
            }
        }
    }
}

/// The recording store conformance suite on a real S3-compatible server (moto, with authentication on).
@Suite struct S3RecordingStoreTests {
    @Test func conformanceOnMoto() async throws {
        let dir = try TemporaryDirectory()
        guard let moto = try MotoServer.start(logDirectory: dir.path) else { return }
        defer { moto.stop() }
        let credentials = SigV4.Credentials(accessKeyId: moto.accessKeyId, secretAccessKey: moto.secretAccessKey)
        // The listing prefix has no `/` unless the configured one does: moto 5.2 checks the signature of a query value
        // with `/` in it wrongly (botocore's own requests fail the same way), so the prefixes here avoid it; such
        // values are signed as AWS does (S3SigningTests.matchesBotocore).
        for prefix in ["", "site-a.recordings."] {
            let location = S3Location(endpoint: moto.endpoint, region: "us-east-1", bucket: moto.bucket, prefix: prefix)
            let store = S3RecordingStore(client: try S3Client(location: location, credentials: credentials))
            try await store.client.probe()
            try await RecordingStoreConformance.run(store)
            // Pieces are objects under the prefix, named by their offsets.
            let id = UUID().uuidString.lowercased()
            try await store.write(sessionId: id, offset: 0, [1, 2, 3])
            try await store.write(sessionId: id, offset: 3, [4])
            let keys = try await store.client.list(prefix: prefix + id).map(\.key)
            #expect(keys == [prefix + id + "/00000000000000000000", prefix + id + "/00000000000000000003"], "\(keys)")
        }
        // A listing longer than a page (1,000 keys) is read whole.
        let location = S3Location(endpoint: moto.endpoint, region: "us-east-1", bucket: moto.bucket, prefix: "many.")
        let store = S3RecordingStore(client: try S3Client(location: location, credentials: credentials))
        let id = UUID().uuidString.lowercased()
        for i in 0..<1005 {
            let digits = String(i)
            let key = "many.\(id)/" + String(repeating: "0", count: 20 - digits.count) + digits
            try await store.client.put(key, [UInt8(truncatingIfNeeded: i)])
        }
        #expect(try await store.length(sessionId: id) == 1005)
        #expect(try await store.read(sessionId: id) == (0..<1005).map { UInt8(truncatingIfNeeded: $0) })
    }

    /// Shipping a long session: each piece appended costs the same few requests however many pieces came before (a
    /// HEAD of the last piece and the PUT), not a listing of them all; a recording deleted by another node is
    /// noticed, and a write after it is refused as a gap.
    @Test func appendingAPieceCostsTheSameRequestsWhateverTheLength() async throws {
        let dir = try TemporaryDirectory()
        guard let moto = try MotoServer.start(logDirectory: dir.path) else { return }
        defer { moto.stop() }
        let credentials = SigV4.Credentials(accessKeyId: moto.accessKeyId, secretAccessKey: moto.secretAccessKey)
        let location = S3Location(endpoint: moto.endpoint, region: "us-east-1", bucket: moto.bucket, prefix: "long.")
        let shipper = S3RecordingStore(client: try S3Client(location: location, credentials: credentials))
        let other = S3RecordingStore(client: try S3Client(location: location, credentials: credentials))
        let id = UUID().uuidString.lowercased()
        // A shipper's round: where the store's copy ends, then the pieces after it.
        var offset = try await shipper.length(sessionId: id)
        for i in 0..<300 {
            let piece = [UInt8](repeating: UInt8(truncatingIfNeeded: i), count: 10 + i % 7)
            try await shipper.write(sessionId: id, offset: offset, piece)
            offset += piece.count
            if i % 50 == 49 { #expect(try await shipper.length(sessionId: id) == offset) }
        }
        let counts = shipper.client.requestCounts
        #expect(counts["PUT"] == 300, "\(counts)")
        #expect((counts["LIST"] ?? 0) <= 2, "appends list the pieces once, not per write: \(counts)")
        #expect((counts["HEAD"] ?? 0) <= 306, "\(counts)")
        // Another node reads it all back.
        let all = try #require(try await other.read(sessionId: id))
        #expect(all.count == offset)
        // Another node deletes it (retention): the shipper's next write finds the last piece gone and refuses the gap.
        try await other.delete(sessionId: id)
        await #expect(throws: StorageError.self) { try await shipper.write(sessionId: id, offset: offset, [1]) }
        #expect(try await shipper.length(sessionId: id) == 0)
    }

    /// Wrong credentials, an unknown key, a missing bucket, an endpoint that is down: each is a clear message.
    @Test func credentialAndEndpointErrorsSayWhatToCheck() async throws {
        let dir = try TemporaryDirectory()
        guard let moto = try MotoServer.start(logDirectory: dir.path) else { return }
        defer { moto.stop() }
        let location = S3Location(endpoint: moto.endpoint, region: "us-east-1", bucket: moto.bucket)
        let id = UUID().uuidString.lowercased()
        func failure(_ location: S3Location, _ credentials: SigV4.Credentials) async throws -> String {
            let store = S3RecordingStore(client: try S3Client(location: location, credentials: credentials))
            do {
                try await store.write(sessionId: id, offset: 0, [1])
                return "accepted"
            } catch let e as StorageError {
                return e.detail
            }
        }
        let wrongSecret = try await failure(
            location, .init(accessKeyId: moto.accessKeyId, secretAccessKey: "not-the-secret"))
        #expect(
            wrongSecret.contains("S3 refused the credentials") && wrongSecret.contains("SignatureDoesNotMatch"),
            "\(wrongSecret)")
        let unknownKey = try await failure(location, .init(accessKeyId: "AKIAUNKNOWNKEY000000", secretAccessKey: "x"))
        #expect(
            unknownKey.contains("S3 refused the credentials") && unknownKey.contains("InvalidAccessKeyId"),
            "\(unknownKey)")
        var noBucket = location
        noBucket.bucket = "no-such-bucket"
        let missing = try await failure(
            noBucket, .init(accessKeyId: moto.accessKeyId, secretAccessKey: moto.secretAccessKey))
        #expect(missing.contains("does not exist"), "\(missing)")
        var down = location
        down.endpoint = "http://127.0.0.1:9"
        let unreachable = try await failure(
            down, .init(accessKeyId: moto.accessKeyId, secretAccessKey: moto.secretAccessKey))
        #expect(unreachable.contains("cannot reach the S3 endpoint http://127.0.0.1:9"), "\(unreachable)")
        // Nothing was written by any of them.
        let good = S3RecordingStore(
            client: try S3Client(
                location: location,
                credentials: .init(accessKeyId: moto.accessKeyId, secretAccessKey: moto.secretAccessKey)))
        #expect(try await good.length(sessionId: id) == 0)
    }
}
