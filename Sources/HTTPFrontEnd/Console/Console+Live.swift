import EngineAPI
import Foundation
import Hummingbird
import NIOCore

/// Live updates of a running session's replay page, as server-sent events.
extension Console {
    /// Seconds between polls of the recording store (the proxy seals what it has every second).
    static let livePoll = Duration.seconds(1)
    /// Polls without news before a comment line keeps the connection from looking idle.
    static let liveHeartbeat = 15

    /// `GET /console/sessions/{id}/live?from=ROWS`: the engine's follow of the recording (authorized, audited once as
    /// `pam.recording.follow`), turned into the replay timeline's rows after the `from` the page already shows.
    /// `event: row` carries one settled row as JSON (the last row waits while its statement may still complete);
    /// `event: ended` comes once the session has ended, and the page then reloads into the full replay.
    func live(_ request: Request, _ context: GatehouseRequestContext, id: String) async throws -> Response {
        guard let ctx = try await caller(request, context) else {
            throw HTTPError(.unauthorized, message: "sign in to the console first")
        }
        guard let shown = Int(Query(request)["from"] ?? "0"), shown >= 0 else {
            throw HTTPError(.badRequest, message: "from must be a whole number")
        }
        let follow = try await services.pam.followPAMRecording(ctx, sessionId: id, from: 0, interval: Self.livePoll)
        var headers = Self.securityHeaders
        headers[.contentType] = "text/event-stream; charset=utf-8"
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                // The timeline grows with each poll's events; rows are sent once nothing can change them.
                var timeline = ConsoleViews.Timeline()
                var sent = shown
                var quiet = 0
                for try await update in follow {
                    timeline.add(update.events)
                    let ended = update.session.endedAt != nil
                    var out = ""
                    let settled = ended ? timeline.rows.count : timeline.settled
                    while sent < settled {
                        out += "event: row\ndata: " + Self.liveJSON(timeline.rows[sent]) + "\n\n"
                        sent += 1
                    }
                    if ended { out += "event: ended\ndata: {}\n\n" }
                    if out.isEmpty {
                        quiet += 1
                        if quiet >= Self.liveHeartbeat { out = ": running\n\n" }
                    }
                    if !out.isEmpty {
                        quiet = 0
                        try await writer.write(ByteBuffer(string: out))
                    }
                }
                try await writer.finish(nil)
            })
    }

    /// A timeline row as the script reads it: text fields, the failure flag, and the parameters as one line.
    static func liveJSON(_ row: [String: Any]) -> String {
        var object: [String: Any] = [:]
        for key in ["t", "kind", "sql", "note", "tag", "rows", "copy", "error", "duration"] {
            if let value = row[key] as? String { object[key] = value }
        }
        if row["failed"] as? Bool == true { object["failed"] = true }
        if let parameters = row["parameters"] as? [[String: Any]] {
            object["parameters"] = parameters.map { "\($0["n"] ?? "") = \($0["value"] ?? "")" }.joined(separator: ", ")
        }
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else {
            return "{}"
        }
        return String(decoding: data, as: UTF8.self)
    }
}
