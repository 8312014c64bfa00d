#!/usr/bin/env bash
# `repd metrics` (issue 17, part 5) on a real pair, read by the Prometheus
# project's own parser (python3-prometheus-client), not by our code:
#  - scraped over HTTP (`repd metrics --listen 127.0.0.1:0`) during a resync,
#    the out-of-sync bytes go down from scrape to scrape while the resync rate
#    is above zero and the replication state is SyncSource;
#  - after the resync: UpToDate, Connected, Established, out of sync 0;
#  - 256 writes and a flush through the Primary's export show up in the
#    request and replication latency histograms (counts, cumulative buckets);
#  - `repd metrics` without --listen prints the same families (the textfile
#    collector form); an unknown path is a 404; a bad --listen is refused.
# run-all-timeout: 300
source "$(dirname "$0")/lib.sh"

[ -z "$STANDIN" ] || skip "needs repd"
require_python_nbd
# The Prometheus parser: Debian's python3-prometheus-client.
PY_PROM=""
for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import prometheus_client' >/dev/null 2>&1; then PY_PROM=$(command -v "$p"); break; fi
done
[ -n "$PY_PROM" ] || missing "no python3 with prometheus_client (python3-prometheus-client)"

# A slow fixed-rate sync of 96 MiB (about 6 s) leaves time for several scrapes.
export TWO_NODE_DISK="c-plan-ahead 0; resync-rate 16M; c-min-rate 0;"
two_node_setup r0 96M
node_create_md alpha
node_create_md beta
node_up alpha
node_up beta
run_logged wait-connect repd_node alpha wait-connect --timeout 30

# ---- the listener --------------------------------------------------------------------------
repd_node alpha metrics --listen 127.0.0.1:0 >"$T/listen.out" 2>&1 </dev/null 8>&- 9>&- &
add_bg_pid "$!"
wait_for "the metrics listener" 100 0.1 grep -q "serving metrics on" "$T/listen.out" ||
    { cat "$T/listen.out" >&2; fail "repd metrics --listen did not start"; }
URL=$(grep -o 'http://[^ ;]*' "$T/listen.out" | head -1)

# scrape NAME: fetches $URL into $T/NAME.prom and parses it with prometheus_client into
# $T/NAME.json ({"name{label=value,...}": value}); fails if the parser rejects it.
scrape() {
    "$PY_PROM" - "$URL" "$T/$1.prom" "$T/$1.json" <<'EOF' || fail "scrape $1: the Prometheus parser rejected the metrics (see $T/$1.prom)"
import json, sys, urllib.request
from prometheus_client.parser import text_string_to_metric_families
url, raw, out = sys.argv[1:4]
with urllib.request.urlopen(url, timeout=10) as r:
    assert r.status == 200, r.status
    ctype = r.headers.get("Content-Type", "")
    assert ctype.startswith("text/plain; version=0.0.4"), ctype
    text = r.read().decode()
open(raw, "w").write(text)
flat = {}
for family in text_string_to_metric_families(text):
    for s in family.samples:
        key = s.name + "{" + ",".join(f"{k}={v}" for k, v in sorted(s.labels.items())) + "}"
        flat[key] = s.value
json.dump(flat, open(out, "w"), indent=1)
EOF
}
value() {  # NAME KEY -> the sample's value (fails if absent)
    "$PY_PROM" -c 'import json,sys; d=json.load(open(sys.argv[1])); k=sys.argv[2]; print(int(d[k]) if k in d else sys.exit("no sample " + k))' \
        "$T/$1.json" "$2" || fail "scrape $1 has no sample $2 (see $T/$1.prom)"
}

scrape idle
[ "$(value idle 'repd_connection_state{peer=beta,resource=r0,state=Connected}')" = 1 ] || fail "idle: not Connected in the metrics"
[ "$(value idle 'repd_disk_state{resource=r0,state=Inconsistent}')" = 1 ] || fail "idle: disk not Inconsistent before the first sync"
[ "$(value idle 'repd_size_bytes{resource=r0}')" = "$TWO_NODE_SIZE" ] || fail "idle: repd_size_bytes is not $TWO_NODE_SIZE"
pass "listener at $URL: Connected, Inconsistent, $TWO_NODE_SIZE bytes, before the first sync"

# ---- during the resync: out-of-sync bytes go down ---------------------------------------
run_logged primary-force repd_node alpha primary --force
syncing() { scrape s && [ "$(value s 'repd_replication_state{peer=beta,resource=r0,state=SyncSource}')" = 1 ]; }
wait_until "alpha SyncSource in the metrics" 20 0.1 syncing || fail "the metrics never showed SyncSource"
seen=() rates=()
for i in 1 2 3 4; do
    sleep 1
    scrape "sync$i"
    [ "$(value "sync$i" 'repd_replication_state{peer=beta,resource=r0,state=SyncSource}')" = 1 ] || break
    seen+=("$(value "sync$i" 'repd_out_of_sync_bytes{peer=beta,resource=r0}')")
    rates+=("$(value "sync$i" 'repd_resync_rate_bytes_per_second{peer=beta,resource=r0}')")
done
[ "${#seen[@]}" -ge 3 ] || fail "only ${#seen[@]} scrapes during the resync: ${seen[*]}"
for ((i = 1; i < ${#seen[@]}; i++)); do
    [ "${seen[i]}" -lt "${seen[i - 1]}" ] || fail "out-of-sync bytes did not go down between scrapes: ${seen[*]}"
done
for r in "${rates[@]}"; do [ "$r" -gt 0 ] || fail "resync rate 0 during the resync: ${rates[*]}"; done
pass "during the resync, out-of-sync bytes by scrape: ${seen[*]}; resync rate (B/s): ${rates[*]}"

run_logged wait-sync repd_node beta wait-sync --timeout 120
scrape synced
[ "$(value synced 'repd_disk_state{resource=r0,state=UpToDate}')" = 1 ] || fail "after the resync: disk not UpToDate"
[ "$(value synced 'repd_peer_disk_state{peer=beta,resource=r0,state=UpToDate}')" = 1 ] || fail "after the resync: peer disk not UpToDate"
[ "$(value synced 'repd_replication_state{peer=beta,resource=r0,state=Established}')" = 1 ] || fail "after the resync: not Established"
[ "$(value synced 'repd_role{resource=r0,state=Primary}')" = 1 ] || fail "after the resync: role not Primary"
[ "$(value synced 'repd_out_of_sync_bytes{peer=beta,resource=r0}')" = 0 ] || fail "after the resync: out of sync not 0"
pass "after the resync: Primary, UpToDate/UpToDate, Established, 0 bytes out of sync"

# ---- latency histograms -----------------------------------------------------------------
"$PY_NBD" - "$ALPHA_URI" <<'EOF' || fail "writes through alpha's export failed"
import nbd, os, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
for i in range(256):
    h.pwrite(os.urandom(4096), i * 65536)
h.flush()
for i in range(16):
    h.pread(4096, i * 65536)
h.shutdown()
EOF
"$REPD" metrics --config-dir "${NODE_CONF[alpha]}" --node alpha --run-dir "${NODE_RUN[alpha]}" >"$T/text.prom" 2>"$T/text.err" ||
    { cat "$T/text.err" >&2; fail "repd metrics (no --listen) failed"; }
counts=$("$PY_PROM" - "$T/text.prom" <<'EOF'

import sys
from prometheus_client.parser import text_string_to_metric_families
families = {f.name: f for f in text_string_to_metric_families(open(sys.argv[1]).read())}
def samples(name, suffix, **labels):
    return [s for s in families[name].samples if s.name == name + suffix and all(s.labels.get(k) == v for k, v in labels.items())]
def histogram(name, **labels):
    buckets = samples(name, "_bucket", **labels)
    counts = [s.value for s in sorted(buckets, key=lambda s: float(s.labels["le"]))]
    assert counts == sorted(counts), f"{name} {labels}: buckets not cumulative: {counts}"
    count = samples(name, "_count", **labels)[0].value
    assert counts[-1] == count, f"{name} {labels}: +Inf bucket {counts[-1]} != count {count}"
    return count, samples(name, "_sum", **labels)[0].value
w, wsum = histogram("repd_request_duration_seconds", resource="r0", op="write")
f, _ = histogram("repd_request_duration_seconds", resource="r0", op="flush")
r, _ = histogram("repd_request_duration_seconds", resource="r0", op="read")
rep, repsum = histogram("repd_replication_duration_seconds", resource="r0", peer="beta")
assert w >= 256, f"write count {w} < 256"
assert f >= 1, f"flush count {f}"
assert r >= 16, f"read count {r}"
assert rep >= 256, f"replication count {rep} < 256"
assert 0 < wsum < 256 * 10 and 0 < repsum < 256 * 10, (wsum, repsum)
print(f"writes {int(w)} (mean {wsum / w * 1e6:.0f} us), flushes {int(f)}, reads {int(r)}, replicated {int(rep)} (mean {repsum / rep * 1e6:.0f} us)")
EOF
) || fail "repd metrics' text output: $counts"
pass "latency histograms after 256 writes, a flush and 16 reads: $counts"

# ---- errors ----------------------------------------------------------------------------
code=$("$PY_PROM" -c 'import sys, urllib.request, urllib.error
try: urllib.request.urlopen(sys.argv[1].replace("/metrics", "/nothing"), timeout=10); print(200)
except urllib.error.HTTPError as e: print(e.code)' "$URL")
[ "$code" = 404 ] || fail "GET /nothing answered $code, expected 404"
rc=0
repd_node alpha metrics --listen nonsense >"$T/bad.out" 2>&1 </dev/null || rc=$?
[ "$rc" != 0 ] || fail "repd metrics --listen nonsense succeeded"
grep -q "expected HOST:PORT" "$T/bad.out" || { cat "$T/bad.out" >&2; fail "repd metrics --listen nonsense: no clear message"; }
pass "GET /nothing is a 404; --listen nonsense exits $rc: $(head -1 "$T/bad.out")"
