#!/usr/bin/env bash
# The main job on one machine: installs what is needed, builds repd, and runs a two-node
# resource (nodes alpha and beta on 127.0.0.1 and 127.0.0.2, each with its own run dir)
# from nothing: create-md, up, primary, a write through the NBD export, status.
# Everything is in $DEMO_DIR (default /tmp/repd-demo) and is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install-deps.sh
echo "== building repd (release)"
swift build -c release 2>&1 | tail -1
REPD="$PWD/.build/release/repd"
DEMO_DIR=${DEMO_DIR:-/tmp/repd-demo}
rm -rf "$DEMO_DIR"; mkdir -p "$DEMO_DIR/conf"
cleanup() {
  for n in alpha beta; do
    "$REPD" down r0 --config-dir "$DEMO_DIR/conf" --node $n --run-dir "$DEMO_DIR/run-$n" >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT
truncate -s 256M "$DEMO_DIR/alpha.img" "$DEMO_DIR/beta.img"
cat > "$DEMO_DIR/conf/r0.res" <<RES
resource r0 {
  net {
    protocol C;
    connect-int 1;
    cram-hmac-alg sha256;
    shared-secret "demo-secret";
    allow-two-primaries;
    after-sb-0pri discard-zero-changes;
    after-sb-1pri discard-secondary;
    after-sb-2pri disconnect;
  }
  # Both nodes run on this machine: no block devices (`device none;`), the exports only.
  on alpha {
    device none;
    disk $DEMO_DIR/alpha.img;
    address 127.0.0.1:7789;
    meta-disk $DEMO_DIR/alpha.md;
  }
  on beta {
    device none;
    disk $DEMO_DIR/beta.img;
    address 127.0.0.2:7789;
    meta-disk $DEMO_DIR/beta.md;
  }
}
RES
r() { local node=$1; shift; echo "+ repd $* (node $node)"; "$REPD" "$@" --config-dir "$DEMO_DIR/conf" --node "$node" --run-dir "$DEMO_DIR/run-$node"; }
echo "== the resource file"; cat "$DEMO_DIR/conf/r0.res"
for n in alpha beta; do r $n create-md r0; done
for n in alpha beta; do r $n up r0; done
wait_for() { # node, text in `status`
  for _ in $(seq 1 100); do "$REPD" status r0 --config-dir "$DEMO_DIR/conf" --node "$1" --run-dir "$DEMO_DIR/run-$1" 2>/dev/null | grep -q "$2" && return 0; sleep 0.2; done
  echo "timed out waiting for $1 to show '$2'" >&2; return 1
}
wait_for alpha "connection:Connected"
r alpha status r0
r alpha primary --force r0
echo "== initial sync alpha -> beta"
wait_for beta "^  disk:UpToDate"
URI="nbd+unix:///r0?socket=$DEMO_DIR/run-alpha/r0.sock"
echo "== writing 64 MiB of random data through alpha's export with nbdcopy"
head -c 64M /dev/urandom > "$DEMO_DIR/payload.bin"
nbdcopy "$DEMO_DIR/payload.bin" "$URI"
nbdcopy "$URI" - | head -c 64M | cmp - "$DEMO_DIR/payload.bin" && echo "read back through the export: identical"
cmp <(head -c 64M "$DEMO_DIR/alpha.img") "$DEMO_DIR/payload.bin" && echo "alpha's backing file holds the data"
nbdinfo "$URI" | sed -n '1,12p'
echo "== status"
r alpha status r0
r beta status r0
r alpha status r0 --json
for n in alpha beta; do r $n down r0; done
trap - EXIT
cmp "$DEMO_DIR/alpha.img" "$DEMO_DIR/beta.img" && echo "alpha.img and beta.img are identical, byte for byte"
echo "demo finished; files are in $DEMO_DIR"
