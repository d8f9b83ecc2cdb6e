#!/bin/sh
# The mesh's certificates for docker-compose.yml (mutual TLS between the services, as `serve` does with its
# throwaway CA): a CA, then one certificate per compose service, server and client at once, named after the
# service (the host its peers dial) and 127.0.0.1 (its own healthcheck). Needs only OpenSSL 3.
#   usage: make-certs.sh CERT_DIR CA_DIR [OWNER_UID]
# CERT_DIR receives ca.crt and SERVICE.crt/SERVICE.key (keys 0400, owned by OWNER_UID when given: the image's
# user); CA_DIR keeps ca.key, which no service mounts. Existing files are kept, so a restart changes nothing;
# delete both directories (compose: `docker compose down -v`) to start a new CA.
set -eu
out="$1"; ca_dir="$2"; owner="${3:-}"
services="cache-store prefill decode-1 decode-2 gateway"
mkdir -p "$out" "$ca_dir"
umask 077
if [ ! -f "$ca_dir/ca.key" ] || [ ! -f "$out/ca.crt" ]; then
  for s in $services; do rm -f "$out/$s.key" "$out/$s.crt"; done
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -days 365 \
    -keyout "$ca_dir/ca.key" -out "$out/ca.crt" -subj /CN=goldfinch-mesh-ca \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
fi
for s in $services; do
  [ -f "$out/$s.key" ] && [ -f "$out/$s.crt" ] && continue
  # PKCS#8 PEM key (what the services read); the certificate names the service and loopback.
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -keyout "$out/$s.key" -out "$ca_dir/$s.csr" -subj "/CN=$s"
  printf 'subjectAltName=DNS:%s,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n' "$s" > "$ca_dir/$s.ext"
  openssl x509 -req -in "$ca_dir/$s.csr" -CA "$out/ca.crt" -CAkey "$ca_dir/ca.key" \
    -CAserial "$ca_dir/ca.srl" -CAcreateserial \
    -days 90 -extfile "$ca_dir/$s.ext" -out "$out/$s.crt"
done
chmod 0444 "$out"/*.crt
chmod 0400 "$out"/*.key
if [ -n "$owner" ]; then
  chown "$owner:$owner" "$out"/*.key
fi
echo "mesh certificates in $out: ca.crt and $services"
