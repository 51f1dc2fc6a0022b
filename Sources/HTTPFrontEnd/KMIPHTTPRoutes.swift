import EngineAPI
import Foundation
import Hummingbird
import KMIPProtocol
import KMIPService
import NIOCore
import TTLV

/// KMIP over HTTPS (KMIP Profiles §5.4 "Message Encoding", the MSGENC profiles): `POST /kmip` with a TTLV body
/// (`application/octet-stream`), a KMIP XML `RequestMessage` (`text/xml`) or KMIP JSON (`application/json`), answered in the same encoding by the
/// same dispatcher the KMIP port uses (the caller is the client certificate's principal, as on port 5696).
struct KMIPHTTPRoutes: Sendable {
    let dispatcher: KMIPDispatcher
    static let maxBody = 1 << 20

    static func text(_ status: HTTPResponse.Status, _ message: String) -> Response {
        Response(
            status: status, headers: [.contentType: "text/plain; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: message + "\n")))
    }

    func register(on router: Router<GatehouseRequestContext>) {
        router.post("kmip") { request, context -> Response in
            let type =
                request.headers[.contentType]?.split(separator: ";").first.map {
                    $0.trimmingCharacters(in: .whitespaces).lowercased()
                } ?? ""
            guard ["application/octet-stream", "text/xml", "application/xml", "application/json"].contains(type) else {
                return Self.text(
                    .unsupportedMediaType,
                    "KMIP over HTTPS takes Content-Type application/octet-stream (TTLV), text/xml (KMIP XML) or application/json (KMIP JSON)"
                )
            }
            var request = request
            let body: ByteBuffer
            do { body = try await request.collectBody(upTo: Self.maxBody) } catch {
                return Self.text(.contentTooLarge, "the request body exceeds \(Self.maxBody) bytes")
            }
            let principal = await context.principal()
            guard principal != .anonymous else {
                return Self.text(.unauthorized, "KMIP needs a client certificate")
            }
            let bytes: [UInt8]
            if type == "application/octet-stream" {
                bytes = Array(buffer: body)
            } else if type == "application/json" {
                do {
                    let message = try KMIPJSON.parse(Data(body.readableBytesView))
                    guard message.name == "RequestMessage" else {
                        return Self.text(.badRequest, "the body must be one KMIP JSON RequestMessage")
                    }
                    bytes = TTLVEncoder.encode(try KMIPXMLCodec().item(message))
                } catch {
                    return Self.text(.badRequest, "invalid KMIP JSON: \(error)")
                }
            } else {
                do {
                    let nodes = try KMIPXMLParser.parse(String(decoding: body.readableBytesView, as: UTF8.self))
                    guard nodes.count == 1, let message = nodes.first, message.name == "RequestMessage" else {
                        return Self.text(.badRequest, "the body must be one KMIP XML RequestMessage")
                    }
                    bytes = TTLVEncoder.encode(try KMIPXMLCodec().item(message))
                } catch {
                    return Self.text(.badRequest, "invalid KMIP XML: \(error)")
                }
            }
            let (response, _) = await dispatcher.process(bytes, principal: principal, ipAddress: context.peerAddress)
            if type == "application/octet-stream" {
                return Response(
                    status: .ok, headers: [.contentType: "application/octet-stream"],
                    body: .init(byteBuffer: ByteBuffer(bytes: response)))
            }
            guard let item = try? TTLVDecoder(maxMessageSize: 1 << 24).decode(response) else {
                return Self.text(.internalServerError, "internal error")
            }
            if type == "application/json" {
                return Response(
                    status: .ok, headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(data: KMIPJSON.serialize(item))))
            }
            return Response(
                status: .ok, headers: [.contentType: "text/xml; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: KMIPXMLCodec.xml(item))))
        }
    }
}
