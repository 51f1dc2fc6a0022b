#!/usr/bin/env bash
# Builds the libFuzzer targets with AddressSanitizer and runs each for a bounded time.
# usage: Tests/Fuzz/run-fuzz.sh [SECONDS]   (default 30 per target)
# Prints one "fuzz NAME: …, no crash" (or "CRASH" / "build failed") line per target; every target runs; exits
# non-zero if any crashed or did not build. Tests/run-all.sh counts each target as one result.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
SECS="${1:-30}"
OUT="$ROOT/.build/fuzz"
mkdir -p "$OUT/corpus-ttlv"

# fuzz_target NAME MODULE MAX_LEN SOURCES…: builds $OUT/NAME-fuzz with ASan and runs it on $OUT/corpus-NAME.
fuzz_target() {
  local name="$1" module="$2" maxlen="$3"; shift 3
  swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name "$module" "$@" -o "$OUT/$name-fuzz" \
    > "$OUT/build-$name.log" 2>&1 ||
    { grep -v 'Cannot export local symbol' "$OUT/build-$name.log" | tail -20; echo "fuzz $name: build failed"; status=1; return; }
  if "$OUT/$name-fuzz" -max_total_time="$SECS" -max_len="$maxlen" -timeout=5 "$OUT/corpus-$name" > "$OUT/$name.log" 2>&1; then
    echo "fuzz $name: $(grep -Eo 'Done [0-9]+ runs' "$OUT/$name.log" | tail -1) in ${SECS}s, no crash"
  else
    tail -30 "$OUT/$name.log"; echo "fuzz $name: CRASH"; status=1
  fi
}
# Every target runs, whatever the others did; the exit status says whether all were clean.
status=0
# Seed corpus: the specification's encoding examples.
printf '\x42\x00\x20\x02\x00\x00\x00\x04\x00\x00\x00\x08\x00\x00\x00\x00' > "$OUT/corpus-ttlv/integer"
printf '\x42\x00\x20\x07\x00\x00\x00\x0b\x48\x65\x6c\x6c\x6f\x20\x57\x6f\x72\x6c\x64\x00\x00\x00\x00\x00' > "$OUT/corpus-ttlv/text"
printf '\x42\x00\x20\x01\x00\x00\x00\x20\x42\x00\x04\x05\x00\x00\x00\x04\x00\x00\x00\xfe\x00\x00\x00\x00\x42\x00\x05\x02\x00\x00\x00\x04\x00\x00\x00\xff\x00\x00\x00\x00' > "$OUT/corpus-ttlv/structure"
fuzz_target ttlv TTLVFuzz 4096 \
  "$ROOT/Sources/TTLV/TTLVItem.swift" "$ROOT/Sources/TTLV/TTLVError.swift" "$ROOT/Sources/TTLV/TTLVDecoder.swift" \
  "$ROOT/Sources/TTLV/TTLVEncoder.swift" "$ROOT/Tests/Fuzz/TTLVFuzz.swift"

# EST: application/pkcs10 bodies (base64 with CRLF/LF/none, raw DER) -> PKCS#10 DER -> certs-only PKCS#7.
mkdir -p "$OUT/corpus-est"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$OUT/est-seed.key" 2>/dev/null &&
  openssl req -new -key "$OUT/est-seed.key" -subj "/CN=seed" -outform DER -out "$OUT/corpus-est/csr.der" 2>/dev/null &&
  base64 -w 64 "$OUT/corpus-est/csr.der" > "$OUT/corpus-est/csr.b64" &&
  base64 -w 64 "$OUT/corpus-est/csr.der" | sed 's/$/\r/' > "$OUT/corpus-est/csr-crlf.b64"
ASN1="$ROOT/.build/checkouts/swift-asn1/Sources/SwiftASN1"
if [ ! -d "$ASN1" ]; then echo "fuzz est: swift-asn1 checkout missing (run swift build first)"; status=1; fi
mapfile -d '' ASN1_SOURCES < <(find "$ASN1" -name '*.swift' -print0)
# swift-extras-base64's Base64 (the codecs' one base64 codec; its Span and Base32 files are not needed).
BASE64="$ROOT/.build/checkouts/swift-extras-base64/Sources/ExtrasBase64/Base64.swift"
if [ ! -f "$BASE64" ]; then echo "fuzz est/jws: swift-extras-base64 checkout missing (run swift build first)"; status=1; fi
# One module: swift-asn1's sources, Base64, and the codec without its imports of them.
sed -e '/^import SwiftASN1$/d' -e '/^import ExtrasBase64$/d' "$ROOT/Sources/ESTProtocol/ESTCodec.swift" > "$OUT/ESTCodec.swift"
fuzz_target est ESTFuzz 8192 \
  "${ASN1_SOURCES[@]}" "$BASE64" "$OUT/ESTCodec.swift" "$ROOT/Tests/Fuzz/ESTFuzz.swift"

# ACME: request bodies -> flattened JWS, protected header rules, JWK parsing.
mkdir -p "$OUT/corpus-jws"
printf '%s' '{"protected":"eyJhbGciOiJFUzI1NiIsIm5vbmNlIjoibiIsInVybCI6Imh0dHBzOi8veC9uZXctYWNjb3VudCIsImp3ayI6eyJrdHkiOiJFQyIsImNydiI6IlAtMjU2IiwieCI6IkFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUEiLCJ5IjoiQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQSJ9fQ","payload":"e30","signature":"AAAA"}' > "$OUT/corpus-jws/newaccount"
printf '%s' '{"protected":"eyJhbGciOiJSUzI1NiIsIm5vbmNlIjoibiIsInVybCI6InUiLCJraWQiOiJrIn0","payload":"","signature":"AA"}' > "$OUT/corpus-jws/kid"
sed '/^import ExtrasBase64$/d' "$ROOT/Sources/ACMEProtocol/JWS.swift" > "$OUT/JWS.swift"
fuzz_target jws JWSFuzz 4096 \
  "$BASE64" "$OUT/JWS.swift" "$ROOT/Tests/Fuzz/JWSFuzz.swift"

# SSH: OpenSSH certificates, public key blobs, KRLs (seeded with a certificate, its keys and a KRL from OpenSSH).
mkdir -p "$OUT/corpus-ssh"
if command -v ssh-keygen >/dev/null; then
  rm -f "$OUT"/ssh-seed*
  ssh-keygen -q -t ed25519 -N '' -f "$OUT/ssh-seed-ca" && ssh-keygen -q -t ecdsa -N '' -f "$OUT/ssh-seed-user" &&
    ssh-keygen -q -s "$OUT/ssh-seed-ca" -I seed -n a,b -z 7 -O force-command=/bin/true "$OUT/ssh-seed-user.pub" &&
    cut -d' ' -f2 "$OUT/ssh-seed-user-cert.pub" | base64 -d > "$OUT/corpus-ssh/cert" &&
    cut -d' ' -f2 "$OUT/ssh-seed-ca.pub" | base64 -d > "$OUT/corpus-ssh/key" &&
    ssh-keygen -q -k -f "$OUT/corpus-ssh/krl" -s "$OUT/ssh-seed-ca.pub" "$OUT/ssh-seed-user-cert.pub" 2>/dev/null
fi
fuzz_target ssh SSHFuzz 4096 \
  "$ROOT"/Sources/SSHProtocol/*.swift "$ROOT/Tests/Fuzz/SSHCertFuzz.swift"

mkdir -p "$OUT/corpus-pgwire"
# An SSLRequest; a start-up packet followed by a Query and a Sync; a server's SASL request and ErrorResponse.
printf '\x00\x00\x00\x08\x04\xd2\x16\x2f' > "$OUT/corpus-pgwire/sslrequest"
printf '\x00\x00\x00\x17\x00\x03\x00\x00user\x00alice\x00\x00Q\x00\x00\x00\x0dselect 1\x00S\x00\x00\x00\x04' > "$OUT/corpus-pgwire/startup-query"
printf '\x00\x00\x00\x08\x04\xd2\x16\x2fR\x00\x00\x00\x17\x00\x00\x00\x0aSCRAM-SHA-256\x00\x00E\x00\x00\x00\x11SERROR\x00C28000\x00\x00' > "$OUT/corpus-pgwire/server"
fuzz_target pgwire PGWireFuzz 4096 \
  "$ROOT/Sources/PGWire/PGFrame.swift" "$ROOT/Sources/PGWire/PGMessages.swift" "$ROOT/Sources/PGWire/PGFrameScanner.swift" \
  "$ROOT/Sources/PGWire/PGValueText.swift" \
  "$ROOT/Tests/Fuzz/PGWireFuzz.swift"

# KMIP XML (the test-case encoding): seeded with OASIS test cases.
mkdir -p "$OUT/corpus-kmipxml"
cp "$ROOT/Tests/vectors/kmip/v1.4-mandatory/SKLC-M-1-14.xml" "$ROOT/Tests/vectors/kmip/v1.4-mandatory/CS-AC-M-OAEP-9-14.xml" \
  "$ROOT/Tests/vectors/kmip/v2.1-baseline/BL-M-1-21.xml" "$OUT/corpus-kmipxml/" 2>/dev/null
for f in KMIPTag KMIPNames KMIPXML; do sed '/^import TTLV$/d' "$ROOT/Sources/KMIPProtocol/$f.swift" > "$OUT/$f.swift"; done
fuzz_target kmipxml KMIPXMLFuzz 16384 \
  "$ROOT/Sources/TTLV/TTLVItem.swift" "$ROOT/Sources/TTLV/TTLVError.swift" "$ROOT/Sources/TTLV/TTLVDecoder.swift" \
  "$ROOT/Sources/TTLV/TTLVEncoder.swift" "$OUT/KMIPTag.swift" "$OUT/KMIPNames.swift" "$OUT/KMIPXML.swift" \
  "$ROOT/Tests/Fuzz/KMIPXMLFuzz.swift"
# Backup archives: the prefix, chunk heads and the decrypted entry stream restore turns into files (seeded with a
# stream of two files and a manifest, as BackupArchive.Writer lays it out).
mkdir -p "$OUT/corpus-backup"
printf '\x07F\x00\x0estore/a.sqlite\x00\x00\x00\x00\x00\x00\x00\x03abcF\x00\x07node-id\x00\x00\x00\x00\x00\x00\x00\x00M\x00\x00\x00\x02{}' > "$OUT/corpus-backup/entries"
fuzz_target backup BackupFuzz 8192 \
  "$ROOT/Sources/Daemon/Backup/BackupFraming.swift" "$ROOT/Tests/Fuzz/BackupFuzz.swift"

exit "$status"
