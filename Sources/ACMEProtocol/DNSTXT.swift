/// The DNS messages of a dns-01 validation (RFC 1035): one TXT question, and the TXT strings of its answer.
public enum DNSTXT {
    public enum Failure: Error, Equatable {
        case malformed(String)
        case rcode(Int)
        case nameTooLong
    }

    /// A recursive TXT query for `name` with message id `id`.
    public static func query(_ name: String, id: UInt16) throws(Failure) -> [UInt8] {
        var out: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xff), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
        var total = 0
        for label in name.split(separator: ".") {
            let bytes = Array(label.utf8)
            guard !bytes.isEmpty, bytes.count <= 63 else { throw .nameTooLong }
            total += bytes.count + 1
            out.append(UInt8(bytes.count))
            out += bytes
        }
        guard total <= 254 else { throw .nameTooLong }
        out += [0, 0, 16, 0, 1]  // root, QTYPE TXT, QCLASS IN
        return out
    }

    /// The TXT strings of every TXT answer (each record's character-strings joined) of a response to `id`.
    public static func answers(_ m: [UInt8], id: UInt16) throws(Failure) -> [String] {
        guard m.count >= 12 else { throw .malformed("short header") }
        guard UInt16(m[0]) << 8 | UInt16(m[1]) == id else { throw .malformed("response id does not match") }
        guard m[2] & 0x80 != 0 else { throw .malformed("not a response") }
        let rcode = Int(m[3] & 0x0f)
        // NXDOMAIN means no records; anything else but NOERROR is a failure.
        if rcode == 3 { return [] }
        guard rcode == 0 else { throw .rcode(rcode) }
        let qd = Int(m[4]) << 8 | Int(m[5])
        let an = Int(m[6]) << 8 | Int(m[7])
        var i = 12
        func skipName() throws(Failure) {
            var hops = 0
            while true {
                guard i < m.count else { throw .malformed("name runs past the end") }
                let len = Int(m[i])
                if len == 0 {
                    i += 1
                    return
                }
                if len & 0xc0 == 0xc0 {
                    i += 2
                    return
                }  // compression pointer ends the name here
                guard len & 0xc0 == 0 else { throw .malformed("bad label") }
                i += 1 + len
                hops += 1
                guard hops <= 128 else { throw .malformed("name too long") }
            }
        }
        for _ in 0..<qd {
            try skipName()
            i += 4
        }
        var out: [String] = []
        for _ in 0..<an {
            try skipName()
            guard i + 10 <= m.count else { throw .malformed("short answer") }
            let type = Int(m[i]) << 8 | Int(m[i + 1])
            let rdlength = Int(m[i + 8]) << 8 | Int(m[i + 9])
            i += 10
            guard i + rdlength <= m.count else { throw .malformed("rdata runs past the end") }
            if type == 16 {
                var j = i
                var text: [UInt8] = []
                while j < i + rdlength {
                    let n = Int(m[j])
                    guard j + 1 + n <= i + rdlength else { throw .malformed("bad character-string") }
                    text += m[(j + 1)..<(j + 1 + n)]
                    j += 1 + n
                }
                out.append(String(decoding: text, as: UTF8.self))
            }
            i += rdlength
        }
        return out
    }
}
