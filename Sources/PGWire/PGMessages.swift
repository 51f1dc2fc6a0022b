/// Start-up packets (no type byte).
public enum PGStartup: Sendable, Hashable {
    /// Protocol 3.x with its parameters (`user`, `database`, `application_name`, `options`, …) in order.
    case startup(minorVersion: Int, parameters: [(String, String)])
    case sslRequest
    case gssEncRequest
    case cancel(processID: Int32, secretKey: Int32)

    public static let sslRequestCode: Int32 = 80_877_103
    public static let gssEncRequestCode: Int32 = 80_877_104
    public static let cancelRequestCode: Int32 = 80_877_102

    public static func == (a: PGStartup, b: PGStartup) -> Bool {
        switch (a, b) {
        case (.startup(let m1, let p1), .startup(let m2, let p2)): return m1 == m2 && p1.elementsEqual(p2, by: ==)
        case (.sslRequest, .sslRequest), (.gssEncRequest, .gssEncRequest): return true
        case (.cancel(let a1, let b1), .cancel(let a2, let b2)): return a1 == a2 && b1 == b2
        default: return false
        }
    }

    public func hash(into h: inout Hasher) {
        switch self {
        case .startup(let m, let p):
            h.combine(m)
            for (k, v) in p {
                h.combine(k)
                h.combine(v)
            }
        case .sslRequest: h.combine(1)
        case .gssEncRequest: h.combine(2)
        case .cancel(let a, let b):
            h.combine(a)
            h.combine(b)
        }
    }

    /// Decodes a start-up frame's body.
    public init(body: [UInt8]) throws {
        var r = PGReader(body)
        let code = try r.int32()
        switch code {
        case Self.sslRequestCode:
            try r.expectEnd("SSLRequest")
            self = .sslRequest
        case Self.gssEncRequestCode:
            try r.expectEnd("GSSENCRequest")
            self = .gssEncRequest
        case Self.cancelRequestCode:
            let pid = try r.int32()
            let key = try r.int32()
            try r.expectEnd("CancelRequest")
            self = .cancel(processID: pid, secretKey: key)
        default:
            guard code >> 16 == 3 else { throw PGWireError.unsupportedStartup(code) }
            var parameters: [(String, String)] = []
            var names = Set<String>()
            while true {
                let name = try r.cString()
                if name.isEmpty { break }
                let value = try r.cString()
                guard names.insert(name).inserted else {
                    throw PGWireError.malformed("start-up parameter \(name) repeated")
                }
                parameters.append((name, value))
            }
            try r.expectEnd("StartupMessage")
            self = .startup(minorVersion: Int(code & 0xffff), parameters: parameters)
        }
    }

    public var frame: PGFrame {
        var w = PGWriter()
        switch self {
        case .sslRequest: w.int32(Self.sslRequestCode)
        case .gssEncRequest: w.int32(Self.gssEncRequestCode)
        case .cancel(let pid, let key):
            w.int32(Self.cancelRequestCode)
            w.int32(pid)
            w.int32(key)
        case .startup(let minor, let parameters):
            w.int32(Int32(3 << 16 | (minor & 0xffff)))
            for (k, v) in parameters {
                w.cString(k)
                w.cString(v)
            }
            w.byte(0)
        }
        return PGFrame(type: nil, body: w.bytes)
    }
}

/// Messages from the client after start-up (§55.7), as far as a proxy needs to understand and record them.
public enum PGFrontendMessage: Sendable, Hashable {
    case query(String)
    case parse(name: String, query: String, parameterTypes: [Int32])
    /// Parameter values are nil for SQL NULL.
    case bind(
        portal: String, statement: String, parameterFormats: [Int16], parameters: [[UInt8]?], resultFormats: [Int16])
    case execute(portal: String, maxRows: Int32)
    /// `kind`: `S` (statement) or `P` (portal).
    case describe(kind: UInt8, name: String)
    case close(kind: UInt8, name: String)
    case sync
    case flush
    case terminate
    case copyData([UInt8])
    case copyDone
    case copyFail(String)
    case functionCall(oid: Int32, argumentFormats: [Int16], arguments: [[UInt8]?], resultFormat: Int16)
    /// PasswordMessage, SASLInitialResponse or SASLResponse: which one depends on the authentication exchange.
    case authenticationResponse([UInt8])

    /// Decodes a typed frame from a client.
    public init(_ frame: PGFrame) throws {
        guard let type = frame.type else {
            throw PGWireError.malformed("a start-up packet where a message was expected")
        }
        var r = PGReader(frame.body)
        switch type {
        case UInt8(ascii: "Q"):
            self = .query(try r.cString())
        case UInt8(ascii: "P"):
            let name = try r.cString()
            let query = try r.cString()
            let n = try r.count16(limit: 65535, minimumItemSize: 4)
            self = .parse(name: name, query: query, parameterTypes: try (0..<n).map { _ in try r.int32() })
        case UInt8(ascii: "B"):
            let portal = try r.cString()
            let statement = try r.cString()
            let nf = try r.count16(limit: 65535, minimumItemSize: 2)
            let formats = try (0..<nf).map { _ in try r.int16() }
            let np = try r.count16(limit: 65535, minimumItemSize: 4)
            let params = try (0..<np).map { _ in try Self.value(&r) }
            let nr = try r.count16(limit: 65535, minimumItemSize: 2)
            self = .bind(
                portal: portal, statement: statement, parameterFormats: formats, parameters: params,
                resultFormats: try (0..<nr).map { _ in try r.int16() })
        case UInt8(ascii: "E"):
            self = .execute(portal: try r.cString(), maxRows: try r.int32())
        case UInt8(ascii: "D"), UInt8(ascii: "C"):
            let kind = try r.byte()
            guard kind == UInt8(ascii: "S") || kind == UInt8(ascii: "P") else {
                throw PGWireError.malformed("Describe/Close kind \(kind)")
            }
            let name = try r.cString()
            self = type == UInt8(ascii: "D") ? .describe(kind: kind, name: name) : .close(kind: kind, name: name)
        case UInt8(ascii: "S"): self = .sync
        case UInt8(ascii: "H"): self = .flush
        case UInt8(ascii: "X"): self = .terminate
        case UInt8(ascii: "d"): self = .copyData(r.rest())
        case UInt8(ascii: "c"): self = .copyDone
        case UInt8(ascii: "f"): self = .copyFail(try r.cString())
        case UInt8(ascii: "F"):
            let oid = try r.int32()
            let nf = try r.count16(limit: 65535, minimumItemSize: 2)
            let formats = try (0..<nf).map { _ in try r.int16() }
            let na = try r.count16(limit: 65535, minimumItemSize: 4)
            let args = try (0..<na).map { _ in try Self.value(&r) }
            self = .functionCall(oid: oid, argumentFormats: formats, arguments: args, resultFormat: try r.int16())
        case UInt8(ascii: "p"): self = .authenticationResponse(r.rest())
        default: throw PGWireError.malformed("unknown message type \(type)")
        }
        try r.expectEnd("message \(Character(Unicode.Scalar(type)))")
    }

    static func value(_ r: inout PGReader) throws -> [UInt8]? {
        let length = try r.int32()
        if length == -1 { return nil }
        guard length >= 0 else { throw PGWireError.malformed("value length \(length)") }
        return try r.take(Int(length))
    }

    static func append(_ w: inout PGWriter, _ value: [UInt8]?) {
        if let value {
            w.int32(Int32(value.count))
            w.raw(value)
        } else {
            w.int32(-1)
        }
    }

    public var frame: PGFrame {
        var w = PGWriter()
        let type: Character
        switch self {
        case .query(let q):
            type = "Q"
            w.cString(q)
        case .parse(let name, let query, let types):
            type = "P"
            w.cString(name)
            w.cString(query)
            w.int16(Int16(types.count))
            for t in types { w.int32(t) }
        case .bind(let portal, let statement, let formats, let params, let results):
            type = "B"
            w.cString(portal)
            w.cString(statement)
            w.int16(Int16(formats.count))
            for f in formats { w.int16(f) }
            w.int16(Int16(params.count))
            for p in params { Self.append(&w, p) }
            w.int16(Int16(results.count))
            for f in results { w.int16(f) }
        case .execute(let portal, let rows):
            type = "E"
            w.cString(portal)
            w.int32(rows)
        case .describe(let kind, let name):
            type = "D"
            w.byte(kind)
            w.cString(name)
        case .close(let kind, let name):
            type = "C"
            w.byte(kind)
            w.cString(name)
        case .sync: type = "S"
        case .flush: type = "H"
        case .terminate: type = "X"
        case .copyData(let d):
            type = "d"
            w.raw(d)
        case .copyDone: type = "c"
        case .copyFail(let m):
            type = "f"
            w.cString(m)
        case .functionCall(let oid, let formats, let args, let result):
            type = "F"
            w.int32(oid)
            w.int16(Int16(formats.count))
            for f in formats { w.int16(f) }
            w.int16(Int16(args.count))
            for a in args { Self.append(&w, a) }
            w.int16(result)
        case .authenticationResponse(let bytes):
            type = "p"
            w.raw(bytes)
        }
        return PGFrame(type: type.asciiValue, body: w.bytes)
    }

    /// SASLInitialResponse body: mechanism, then the client-first message.
    public static func saslInitialResponse(mechanism: String, data: [UInt8]) -> PGFrontendMessage {
        var w = PGWriter()
        w.cString(mechanism)
        w.int32(Int32(data.count))
        w.raw(data)
        return .authenticationResponse(w.bytes)
    }
}

/// Messages from the server (§55.7).
public enum PGBackendMessage: Sendable, Hashable {
    /// Authentication request: 0 ok, 3 cleartext, 5 MD5 (with salt), 10 SASL (mechanisms), 11 SASL continue,
    /// 12 SASL final; `data` is what follows the code.
    case authentication(code: Int32, data: [UInt8])
    case parameterStatus(name: String, value: String)
    case backendKeyData(processID: Int32, secretKey: Int32)
    /// `I` idle, `T` in a transaction, `E` in a failed transaction.
    case readyForQuery(status: UInt8)
    case rowDescription([PGField])
    case dataRow([[UInt8]?])
    case commandComplete(tag: String)
    /// ErrorResponse (`isError`) or NoticeResponse: field code → value (`S` severity, `C` SQLSTATE, `M` message, …).
    case errorOrNotice(isError: Bool, fields: [UInt8: String])
    case parseComplete, bindComplete, closeComplete, noData, portalSuspended, emptyQueryResponse
    case parameterDescription([Int32])
    /// CopyInResponse (`G`), CopyOutResponse (`H`) or CopyBothResponse (`W`).
    case copyResponse(kind: UInt8, overallFormat: Int8, columnFormats: [Int16])
    case copyData([UInt8])
    case copyDone
    case notification(processID: Int32, channel: String, payload: String)
    case negotiateProtocolVersion(minor: Int32, unrecognized: [String])
    case functionCallResponse([UInt8]?)

    public init(_ frame: PGFrame) throws {
        guard let type = frame.type else { throw PGWireError.malformed("a start-up packet from a server") }
        var r = PGReader(frame.body)
        switch type {
        case UInt8(ascii: "R"): self = .authentication(code: try r.int32(), data: r.rest())
        case UInt8(ascii: "S"): self = .parameterStatus(name: try r.cString(), value: try r.cString())
        case UInt8(ascii: "K"): self = .backendKeyData(processID: try r.int32(), secretKey: try r.int32())
        case UInt8(ascii: "Z"): self = .readyForQuery(status: try r.byte())
        case UInt8(ascii: "T"):
            let n = try r.count16(limit: 1664, minimumItemSize: 19)
            self = .rowDescription(
                try (0..<n).map { _ in
                    PGField(
                        name: try r.cString(), tableOID: try r.int32(), column: try r.int16(), typeOID: try r.int32(),
                        typeSize: try r.int16(), typeModifier: try r.int32(), format: try r.int16())
                })
        case UInt8(ascii: "D"):
            let n = try r.count16(limit: 1664, minimumItemSize: 4)
            self = .dataRow(try (0..<n).map { _ in try PGFrontendMessage.value(&r) })
        case UInt8(ascii: "C"): self = .commandComplete(tag: try r.cString())
        case UInt8(ascii: "E"), UInt8(ascii: "N"):
            var fields: [UInt8: String] = [:]
            while true {
                let code = try r.byte()
                if code == 0 { break }
                fields[code] = try r.cString()
            }
            self = .errorOrNotice(isError: type == UInt8(ascii: "E"), fields: fields)
        case UInt8(ascii: "1"): self = .parseComplete
        case UInt8(ascii: "2"): self = .bindComplete
        case UInt8(ascii: "3"): self = .closeComplete
        case UInt8(ascii: "n"): self = .noData
        case UInt8(ascii: "s"): self = .portalSuspended
        case UInt8(ascii: "I"): self = .emptyQueryResponse
        case UInt8(ascii: "t"):
            let n = try r.count16(limit: 65535, minimumItemSize: 4)
            self = .parameterDescription(try (0..<n).map { _ in try r.int32() })
        case UInt8(ascii: "G"), UInt8(ascii: "H"), UInt8(ascii: "W"):
            let overall = Int8(bitPattern: try r.byte())
            let n = try r.count16(limit: 1664, minimumItemSize: 2)
            self = .copyResponse(
                kind: type, overallFormat: overall, columnFormats: try (0..<n).map { _ in try r.int16() })
        case UInt8(ascii: "d"): self = .copyData(r.rest())
        case UInt8(ascii: "c"): self = .copyDone
        case UInt8(ascii: "A"):
            self = .notification(processID: try r.int32(), channel: try r.cString(), payload: try r.cString())
        case UInt8(ascii: "v"):
            let minor = try r.int32()
            let n = try r.int32()
            guard n >= 0, Int(n) <= r.remaining else { throw PGWireError.malformed("bad option count") }
            self = .negotiateProtocolVersion(minor: minor, unrecognized: try (0..<Int(n)).map { _ in try r.cString() })
        case UInt8(ascii: "V"): self = .functionCallResponse(try PGFrontendMessage.value(&r))
        default: throw PGWireError.malformed("unknown message type \(type)")
        }
        try r.expectEnd("message \(Character(Unicode.Scalar(type)))")
    }

    public var frame: PGFrame {
        var w = PGWriter()
        let type: Character
        switch self {
        case .authentication(let code, let data):
            type = "R"
            w.int32(code)
            w.raw(data)
        case .parameterStatus(let name, let value):
            type = "S"
            w.cString(name)
            w.cString(value)
        case .backendKeyData(let pid, let key):
            type = "K"
            w.int32(pid)
            w.int32(key)
        case .readyForQuery(let status):
            type = "Z"
            w.byte(status)
        case .rowDescription(let fields):
            type = "T"
            w.int16(Int16(fields.count))
            for f in fields {
                w.cString(f.name)
                w.int32(f.tableOID)
                w.int16(f.column)
                w.int32(f.typeOID)
                w.int16(f.typeSize)
                w.int32(f.typeModifier)
                w.int16(f.format)
            }
        case .dataRow(let values):
            type = "D"
            w.int16(Int16(values.count))
            for v in values { PGFrontendMessage.append(&w, v) }
        case .commandComplete(let tag):
            type = "C"
            w.cString(tag)
        case .errorOrNotice(let isError, let fields):
            type = isError ? "E" : "N"
            for (code, value) in fields.sorted(by: { $0.key < $1.key }) where code != 0 {
                w.byte(code)
                w.cString(value)
            }
            w.byte(0)
        case .parseComplete: type = "1"
        case .bindComplete: type = "2"
        case .closeComplete: type = "3"
        case .noData: type = "n"
        case .portalSuspended: type = "s"
        case .emptyQueryResponse: type = "I"
        case .parameterDescription(let oids):
            type = "t"
            w.int16(Int16(oids.count))
            for o in oids { w.int32(o) }
        case .copyResponse(let kind, let overall, let formats):
            type = Character(Unicode.Scalar(kind))
            w.byte(UInt8(bitPattern: overall))
            w.int16(Int16(formats.count))
            for f in formats { w.int16(f) }
        case .copyData(let d):
            type = "d"
            w.raw(d)
        case .copyDone: type = "c"
        case .notification(let pid, let channel, let payload):
            type = "A"
            w.int32(pid)
            w.cString(channel)
            w.cString(payload)
        case .negotiateProtocolVersion(let minor, let options):
            type = "v"
            w.int32(minor)
            w.int32(Int32(options.count))
            for o in options { w.cString(o) }
        case .functionCallResponse(let v):
            type = "V"
            PGFrontendMessage.append(&w, v)
        }
        return PGFrame(type: type.asciiValue, body: w.bytes)
    }

    /// An ErrorResponse with severity, SQLSTATE and message (what the proxy itself says to a client).
    public static func error(sqlState: String, message: String, severity: String = "ERROR") -> PGBackendMessage {
        .errorOrNotice(
            isError: true,
            fields: [
                UInt8(ascii: "S"): severity, UInt8(ascii: "V"): severity, UInt8(ascii: "C"): sqlState,
                UInt8(ascii: "M"): message,
            ])
    }
}

/// One column of a RowDescription.
public struct PGField: Sendable, Hashable {
    public var name: String
    public var tableOID: Int32
    public var column: Int16
    public var typeOID: Int32
    public var typeSize: Int16
    public var typeModifier: Int32
    public var format: Int16

    public init(
        name: String, tableOID: Int32, column: Int16, typeOID: Int32, typeSize: Int16, typeModifier: Int32,
        format: Int16
    ) {
        self.name = name
        self.tableOID = tableOID
        self.column = column
        self.typeOID = typeOID
        self.typeSize = typeSize
        self.typeModifier = typeModifier
        self.format = format
    }
}
