#!/usr/bin/env bash
# An EST (RFC 7030 / RFC 8951) client made of curl + openssl, used by the test suite and the quick start in docs/pki-and-est.md.
# usage: est-client.sh BASEURL SERVER_CA OUTDIR [--user USER:PASS | --cert CERT --key KEY]
#   BASEURL   https://127.0.0.1:8443/.well-known/est/PROFILE
#   SERVER_CA PEM trust anchor for the server's TLS certificate (explicit TA, RFC 7030 §3.6.1)
# env: EST_CN (device-1), EST_SAN (DNS:$EST_CN), EST_KEYALG (ec|rsa; ec = P-256)
# Steps (artifacts in OUTDIR): cacerts -> chain.pem; csrattrs -> csrattrs.der; simpleenroll -> issued.pem;
# simplereenroll (issued certificate as TLS client certificate) -> reissued.pem; serverkeygen -> skg.pem + skg.key.
# Prints one PASS/FAIL line per step and 'N passed, M failed'; exit 1 on any failure.
set -u
BASE="${1%/}"; CA="$(readlink -f "$2")"; OUT="$3"; shift 3
# --cert and --key may be relative to where the script was started: make them absolute before the cd below.
AUTH=()
while [ $# -gt 0 ]; do
  case "$1" in
    --cert|--key) AUTH+=("$1" "$(readlink -f "$2")"); shift 2 ;;
    *) AUTH+=("$1"); shift ;;
  esac
done
mkdir -p "$OUT" && cd "$OUT" || exit 2
CN="${EST_CN:-device-1}"; SAN="${EST_SAN:-DNS:$CN}"
CURL=(curl -sS --cacert "$CA" --max-time 30)
pass=0; fail=0
ok()  { echo "PASS $*"; pass=$((pass+1)); }
bad() { echo "FAIL $*"; fail=$((fail+1)); }
unb64() { tr -d '\r' < "$1" | base64 -d > "$2"; }
p7_to_pem() { unb64 "$1" "$1.der" && openssl pkcs7 -inform DER -in "$1.der" -print_certs -out "$2" && grep -q 'BEGIN CERTIFICATE' "$2"; }
newkey() {
  if [ "${EST_KEYALG:-ec}" = rsa ]; then openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null
  else openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; fi
}
csr() { openssl req -new -key "$1" -subj "/CN=$CN" -addext "subjectAltName=$SAN" -outform DER -out "$2.der" && base64 -w 64 "$2.der" > "$2"; }
post() {  # post OP BODYFILE OUTFILE [curl args]; prints the HTTP status
  local op="$1" body="$2" out="$3"; shift 3
  "${CURL[@]}" "$@" -o "$out" -D "$out.headers" -w '%{http_code}' -X POST -H 'Content-Type: application/pkcs10' \
    -H 'Content-Transfer-Encoding: base64' --data-binary @"$body" "$BASE/$op"
}

code=$("${CURL[@]}" -o cacerts.b64 -D cacerts.headers -w '%{http_code}' "$BASE/cacerts") || code=000
if [ "$code" = 200 ] && grep -qi '^content-type: application/pkcs7-mime; smime-type=certs-only' cacerts.headers && p7_to_pem cacerts.b64 chain.pem; then
  ok "cacerts: $(grep -c 'BEGIN CERT' chain.pem) certificate(s)"
else bad "cacerts (HTTP $code)"; fi

code=$("${CURL[@]}" -o csrattrs.b64 -D csrattrs.headers -w '%{http_code}' "$BASE/csrattrs") || code=000
if [ "$code" = 200 ] && grep -qi '^content-type: application/csrattrs' csrattrs.headers && unb64 csrattrs.b64 csrattrs.der \
   && openssl asn1parse -inform DER -in csrattrs.der > csrattrs.txt; then
  ok "csrattrs: $(grep -o 'OBJECT *:[^ ]*' csrattrs.txt | cut -d: -f2 | paste -sd,)"
else bad "csrattrs (HTTP $code)"; fi

newkey device.key && csr device.key enroll.csr
code=$(post simpleenroll enroll.csr enroll.b64 "${AUTH[@]}") || code=000
if [ "$code" = 200 ] && p7_to_pem enroll.b64 issued.pem; then
  if openssl verify -CAfile chain.pem issued.pem > /dev/null 2>&1; then ok "simpleenroll: $(openssl x509 -in issued.pem -noout -serial)"
  else bad "simpleenroll: the certificate does not verify against cacerts"; fi
else bad "simpleenroll (HTTP $code): $(head -c 300 enroll.b64 2>/dev/null)"; fi

if [ -s issued.pem ]; then
  csr device.key reenroll.csr
  code=$(post simplereenroll reenroll.csr reenroll.b64 --cert issued.pem --key device.key) || code=000
  if [ "$code" = 200 ] && p7_to_pem reenroll.b64 reissued.pem && openssl verify -CAfile chain.pem reissued.pem > /dev/null 2>&1; then
    ok "simplereenroll: $(openssl x509 -in reissued.pem -noout -serial)"
  else bad "simplereenroll (HTTP $code): $(head -c 300 reenroll.b64 2>/dev/null)"; fi
else bad "simplereenroll: no certificate to re-enroll with"; fi

newkey skg-request.key && csr skg-request.key skg.csr
code=$(post serverkeygen skg.csr skg.multipart "${AUTH[@]}") || code=000
if [ "$code" = 200 ]; then
  boundary=$(grep -i '^content-type: multipart/mixed' skg.multipart.headers | sed 's/.*boundary=//' | tr -d '\r\n')
  # Split the multipart body: the part after the pkcs8 header is the key, after the pkcs7 header the certificate.
  awk -v b="--$boundary" 'BEGIN{RS="\r\n"} $0==b||$0==b"--"{part++; body=0; next} /^$/{body=1; next}
       body{print > ("skg.part" part)}' skg.multipart
  if grep -qi 'application/pkcs8' skg.multipart && unb64 skg.part1 skg.key.der && openssl pkey -inform DER -in skg.key.der -out skg.key 2>/dev/null \
     && p7_to_pem skg.part2 skg.pem && openssl verify -CAfile chain.pem skg.pem > /dev/null 2>&1 \
     && [ "$(openssl pkey -in skg.key -pubout)" = "$(openssl x509 -in skg.pem -noout -pubkey)" ]; then
    ok "serverkeygen: key and certificate match"
  else bad "serverkeygen: the multipart body is not a matching key and certificate"; fi
else bad "serverkeygen (HTTP $code): $(head -c 300 skg.multipart 2>/dev/null)"; fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
