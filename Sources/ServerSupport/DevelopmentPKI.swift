import Foundation

/// The appliance's first-start PKI under `<data_dir>/certs`: a CA, a server certificate for
/// localhost / 127.0.0.1 / ::1, and an administrator client certificate. Private keys are written with mode 0600.
/// Existing files are kept, so running it again is harmless.
public struct DevelopmentPKI: Sendable {
    public var directory: String
    public var caCertificate: String { directory + "/ca.crt" }
    public var caKey: String { directory + "/ca.key" }
    public var serverCertificate: String { directory + "/server.crt" }
    public var serverKey: String { directory + "/server.key" }
    public var adminCertificate: String { directory + "/admin.crt" }
    public var adminKey: String { directory + "/admin.key" }

    public init(directory: String) { self.directory = directory }

    /// True when every file exists.
    public var isComplete: Bool {
        [caCertificate, caKey, serverCertificate, serverKey, adminCertificate, adminKey].allSatisfy {
            FileManager.default.fileExists(atPath: $0)
        }
    }

    /// Creates whatever is missing. Returns the paths it wrote.
    @discardableResult
    public func ensure(adminCommonName: String) throws -> [String] {
        if isComplete { return [] }
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let year: TimeInterval = 365 * 86400
        let ca = try CertificateFactory.makeCA(commonName: "Gatehouse Appliance CA", validity: 10 * year)
        let server = try CertificateFactory.issue(
            commonName: "localhost", usage: .server(dnsNames: ["localhost"], ipAddresses: ["127.0.0.1", "::1"]),
            issuer: ca,
            validity: year)
        let admin = try CertificateFactory.issue(
            commonName: adminCommonName, usage: .client, issuer: ca, validity: year)
        var written: [String] = []
        for (path, text, mode) in [
            (caKey, ca.privateKeyPEM, 0o600), (caCertificate, ca.certificatePEM, 0o644),
            (serverKey, server.privateKeyPEM, 0o600),
            (serverCertificate, server.certificatePEM + ca.certificatePEM, 0o644),
            (adminKey, admin.privateKeyPEM, 0o600), (adminCertificate, admin.certificatePEM, 0o644),
        ] {
            try Self.writeFile(path, text, mode: mode_t(mode))
            written.append(path)
        }
        return written
    }

    static func writeFile(_ path: String, _ text: String, mode: mode_t) throws {
        let tmp = path + ".tmp"
        unlink(tmp)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, mode)
        guard fd >= 0 else { throw PKIError("cannot create \(tmp): \(String(cString: strerror(errno)))") }
        let data = Array(text.utf8)
        let n = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard n == data.count, synced, rename(tmp, path) == 0 else {
            throw PKIError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }

    struct PKIError: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }
}
