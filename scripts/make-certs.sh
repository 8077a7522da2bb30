#!/usr/bin/env bash
# Makes the test PKI for TLS examples, tests and benchmarks in DIR, with the
# openssl CLI (OpenSSL 3.0 or later). No key is ever committed: run this
# into a temp dir (or the git-ignored certs/ or .certs/) when you need it.
#
#   scripts/make-certs.sh DIR
#
# DIR/ca.pem, DIR/ca.key           the test CA (ECDSA P-256)
# DIR/NAME.pem, DIR/NAME.key       a leaf certificate (the leaf alone; its
#                                  CA is ca.pem) and its PKCS#8 key, for NAME:
#   front-proxy  DNS:front-proxy, DNS:localhost, IP:127.0.0.1
#   service1     DNS:service1, URI:spiffe://blog/service1
#   service2     DNS:service2, URI:spiffe://blog/service2
#   rsa-server   RSA 2048; DNS:rsa-server, DNS:localhost, IP:127.0.0.1
#   expired      DNS:expired, DNS:localhost, IP:127.0.0.1; valid for the
#                7 days that ended 23 days ago
# DIR/wrong-ca.pem, .key           another CA, which ca.pem does not vouch for
# DIR/stranger.pem, .key           a leaf signed by wrong-ca (DNS:stranger,
#                                  DNS:localhost, IP:127.0.0.1)
#
# Every key is ECDSA P-256 unless said otherwise; every leaf has serverAuth
# and clientAuth and, but `expired`, is valid for 7 days from now. Running
# it again replaces every file (a new CA). Prints nothing on success; keys
# are readable by their owner only.
set -euo pipefail

dir=${1:?usage: scripts/make-certs.sh DIR}
mkdir -p "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One config for every certificate: a section of extensions each.
leaf_ext='basicConstraints = critical, CA:FALSE
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid'
cnf="$work/openssl.cnf"
{
  cat <<CNF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ca]
default_ca = ca_default
[ca_default]
database = $work/index.txt
new_certs_dir = $work
rand_serial = yes
default_md = sha256
policy = any
unique_subject = no
[any]
commonName = supplied
CNF
  while read -r name sans; do
    # keyEncipherment means something for RSA keys only.
    ku='digitalSignature'
    [ "$name" = rsa-server ] && ku+=', keyEncipherment'
    printf '[%s]\n%s\nkeyUsage = critical, %s\nsubjectAltName = %s\n' \
      "$name" "$leaf_ext" "$ku" "$sans"
  done <<'SANS'
front-proxy DNS:front-proxy, DNS:localhost, IP:127.0.0.1
service1 DNS:service1, URI:spiffe://blog/service1
service2 DNS:service2, URI:spiffe://blog/service2
rsa-server DNS:rsa-server, DNS:localhost, IP:127.0.0.1
expired DNS:expired, DNS:localhost, IP:127.0.0.1
stranger DNS:stranger, DNS:localhost, IP:127.0.0.1
SANS
} >"$cnf"

# run CMD...: runs an openssl command, showing its output only if it fails.
run() {
  "$@" >"$work/out" 2>&1 || { cat "$work/out" >&2; exit 1; }
}

ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)
rsa=(-newkey rsa:2048)

# ca NAME: a self-signed CA valid for 7 days.
ca() {
  run openssl req -x509 -new "${ec[@]}" -nodes -keyout "$work/$1.key" \
    -subj "/CN=nuncio test $1" -days 7 -sha256 \
    -config "$cnf" -extensions ca_ext -out "$work/$1.pem"
}

# leaf NAME ISSUER KEYOPTS...: a leaf signed by ISSUER, valid for 7 days,
# with the extensions of the config's section NAME.
leaf() {
  local name=$1 issuer=$2
  shift 2
  run openssl req -new "$@" -nodes -keyout "$work/$name.key" \
    -subj "/CN=$name" -days 7 -sha256 \
    -CA "$work/$issuer.pem" -CAkey "$work/$issuer.key" \
    -config "$cnf" -extensions "$name" -out "$work/$name.pem"
}

umask 077
ca ca
ca wrong-ca
leaf front-proxy ca "${ec[@]}"
leaf service1 ca "${ec[@]}"
leaf service2 ca "${ec[@]}"
leaf rsa-server ca "${rsa[@]}"
leaf stranger wrong-ca "${ec[@]}"

# expired: OpenSSL 3.0's `req` and `x509` take no start date (`-not_before`
# came in 3.4), so `openssl ca` signs a request with both dates in the past.
run openssl req -new "${ec[@]}" -nodes -keyout "$work/expired.key" -subj /CN=expired \
  -config "$cnf" -out "$work/expired.csr"
: >"$work/index.txt"
run openssl ca -batch -notext -config "$cnf" -extensions expired \
  -cert "$work/ca.pem" -keyfile "$work/ca.key" -in "$work/expired.csr" \
  -startdate "$(date -u -d '30 days ago' +%Y%m%d%H%M%SZ)" \
  -enddate "$(date -u -d '23 days ago' +%Y%m%d%H%M%SZ)" \
  -out "$work/expired.pem"

# Certificates are public; keys stay owner-only (the umask above).
for name in ca wrong-ca front-proxy service1 service2 rsa-server expired stranger; do
  chmod 644 "$work/$name.pem"
  mv -f "$work/$name.pem" "$work/$name.key" "$dir/"
done
