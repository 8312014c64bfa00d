#!/usr/bin/env bash
# make-test-pki.sh DIR: the certificates the TLS tests use, made with openssl the way
# Docs/Security.md tells an administrator to (EC P-256 keys, names in subjectAltName).
#   DIR/ca.pem DIR/ca-key.pem                 the cluster's CA
#   DIR/NODE.pem DIR/NODE-key.pem             NODE = alpha, beta: DNS:NODE, DNS:localhost, IP:127.0.0.1, IP:127.0.0.2
#   DIR/gamma.pem DIR/gamma-key.pem           signed by the CA, issued to another node name
#   DIR/other-ca.pem DIR/beta-other.pem ...   beta's name, signed by another CA
#   DIR/beta-expired.pem DIR/beta-expired-key.pem   beta's name, the CA's signature, expired in 2020
#   DIR/client/{ca-cert,client-cert,client-key}.pem  an NBD client's directory (libnbd's and
#                                                     qemu's layout), its certificate signed by the CA
#   DIR/stranger/...                          the same layout, the client certificate from the other CA
set -euo pipefail
dir=$1
mkdir -p "$dir"
cd "$dir"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ca() {  # NAME SUBJECT
    key "$1-key.pem"
    openssl req -x509 -new -key "$1-key.pem" -subj "/CN=$2" -days 30 -out "$1.pem" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}
leaf() {  # OUT CA NAME SAN [DAYS]
    key "$1-key.pem"
    openssl req -new -key "$1-key.pem" -subj "/CN=$3" -out "$1.csr"
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$4" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2-key.pem" -CAcreateserial -days "${5:-30}" \
        -extfile "$1.ext" -out "$1.pem" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}
ca ca "repd test CA"
ca other-ca "another CA"
loopback="DNS:localhost,IP:127.0.0.1,IP:127.0.0.2"
leaf alpha ca alpha "DNS:alpha,$loopback"
leaf beta ca beta "DNS:beta,$loopback"
leaf gamma ca gamma "DNS:gamma,$loopback"
leaf beta-other other-ca beta "DNS:beta,$loopback"
leaf nbd-client ca nbd-client "DNS:nbd-client"
leaf stranger other-ca stranger "DNS:stranger"

# Expired: `openssl ca` is the openssl command that takes explicit validity dates.
key beta-expired-key.pem
openssl req -new -key beta-expired-key.pem -subj "/CN=beta" -out beta-expired.csr
mkdir -p ca-db
: >ca-db/index.txt
echo 1000 >ca-db/serial
cat >ca-db/ca.cnf <<EOF
[ ca ]
default_ca = test
[ test ]
database = $dir/ca-db/index.txt
serial = $dir/ca-db/serial
new_certs_dir = $dir/ca-db
default_md = sha256
policy = any
copy_extensions = none
x509_extensions = leaf
[ any ]
commonName = supplied
[ leaf ]
subjectAltName = DNS:beta,$loopback
extendedKeyUsage = serverAuth,clientAuth
EOF
openssl ca -batch -config ca-db/ca.cnf -cert ca.pem -keyfile ca-key.pem -in beta-expired.csr \
    -startdate 20200101000000Z -enddate 20200201000000Z -out beta-expired.pem >/dev/null 2>&1
rm -f beta-expired.csr

for client in client:nbd-client stranger:stranger; do
    d=${client%%:*} name=${client#*:}
    mkdir -p "$d"
    cp ca.pem "$d/ca-cert.pem"
    cp "$name.pem" "$d/client-cert.pem"
    cp "$name-key.pem" "$d/client-key.pem"
done
chmod 600 ./*-key.pem client/client-key.pem stranger/client-key.pem
