import EngineAPI
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The SSH CA's public key that hosts fetch to trust it (`/ssh/ca/{caId}.pub`). The rest of the SSH API, including
/// the KRL, is in the generated admin API (`AdminHandler+SSH.swift`).
struct SSHRoutes: Sendable {
    let engine: any SSHEngine

    func register(on router: Router<GatehouseRequestContext>) {
        router.get("ssh/ca/:file") { _, c -> Response in
            let file = try c.parameters.require("file")
            guard file.hasSuffix(".pub") else {
                throw HTTPError(.notFound, message: "CA keys are at /ssh/ca/{caId}.pub")
            }
            let key = try await engine.sshCAPublicKey(caId: String(file.dropLast(4)))
            return Response(
                status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: key + "\n")))
        }
    }
}
