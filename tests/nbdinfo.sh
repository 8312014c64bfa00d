#!/usr/bin/env bash
# nbdinfo (libnbd) against the export: size == usable size from
# `repd dump-md --json`, capability flags, block sizes, --list, --map.
source "$(dirname "$0")/lib.sh"

require_tool nbdinfo python3

start_single_node t0 128M

# ---- nbdinfo --json on the export ------------------------------------------
run_logged info nbdinfo --json "$NBD_URI"
J="$T/info.out"
q() { json_query "$J" "$1"; }

[ "$(q 'len(j["exports"])')" = 1 ] || fail "nbdinfo --json: expected exactly one export"
[ "$(q 'j["exports"][0]["export-name"]')" = "$RES" ] ||
    fail "nbdinfo --json: export-name is '$(q 'j["exports"][0]["export-name"]')', expected '$RES'"
[ "$(q 'j["protocol"]')" = newstyle-fixed ] || fail "protocol is $(q 'j["protocol"]'), expected newstyle-fixed"

SIZE=$(q 'j["exports"][0]["export-size"]')
USABLE_SIZE=$(repd_usable_size 2>"$T/usable.err") || {
    for f in dump-md.json dump-md.err dump-md-up.json dump-md-up.err usable.err; do
        [ -e "$T/$f" ] && show_file "$T/$f" 30 >&2
    done
    fail "cannot read usable-size-bytes from 'repd dump-md $RES --json'"
}
[ "$SIZE" = "$USABLE_SIZE" ] || fail "export-size $SIZE != usable size $USABLE_SIZE (dump-md)"
if [ "$SIZE" -le 0 ] || [ "$SIZE" -gt "$(stat -c %s "$DISK")" ]; then
    fail "export-size $SIZE not in (0, backing file size]"
fi
pass "export-size $SIZE equals the usable size from dump-md"

for cap in can_multi_conn can_flush can_fua can_trim can_zero; do
    v=$(q "j['exports'][0].get('$cap')")
    [ "$v" = true ] || { show_file "$J" 40 >&2; fail "$cap is $v, expected true"; }
done
[ "$(q 'j["exports"][0].get("is_read_only")')" = false ] || fail "a Primary's export is read-only"
pass "can_multi_conn/can_flush/can_fua/can_trim/can_zero true, writable"

# Block size constraints (NBD_INFO_BLOCK_SIZE) present and sane.
python3 - "$J" "$SIZE" >"$T/bs.out" 2>&1 <<'EOF' || { cat "$T/bs.out" >&2; fail "block sizes"; }
import json, sys
e = json.load(open(sys.argv[1]))["exports"][0]
size = int(sys.argv[2])
keys = ("block_size_minimum", "block_size_preferred", "block_size_maximum")
missing = [k for k in keys if k not in e]
if missing:
    sys.exit("block sizes missing from nbdinfo --json: %s" % ", ".join(missing))
mn, pref, mx = (e[k] for k in keys)
p2 = lambda x: x > 0 and x & (x - 1) == 0
errs = []
if not (p2(mn) and mn <= 65536):
    errs.append("minimum %d is not a power of 2 <= 64 KiB" % mn)
if not (p2(pref) and pref >= mn):
    errs.append("preferred %d is not a power of 2 >= minimum %d" % (pref, mn))
if not (mx >= min(pref, size) and (mx == 0xFFFFFFFF or mx % mn == 0)):
    errs.append("maximum %d is not >= min(preferred, size) and a multiple of minimum" % mx)
if size % mn:
    errs.append("export size %d is not a multiple of the minimum block size %d" % (size, mn))
if errs:
    sys.exit("; ".join(errs))
print("min %d pref %d max %d" % (mn, pref, mx))
EOF
pass "block sizes present and consistent ($(cat "$T/bs.out"))"

case " $(q '" ".join(j["exports"][0].get("contexts", []))') " in
    *" base:allocation "*) ;;
    *) fail "base:allocation not among the meta contexts" ;;
esac

# ---- nbdinfo --list ----------------------------------------------------------
LIST_URI="nbd+unix:///?socket=$NBD_SOCK"
run_logged list nbdinfo --list --json "$LIST_URI"
[ "$(json_query "$T/list.out" "[e['export-name'] for e in j['exports']].count('$RES')")" = 1 ] || {
    show_file "$T/list.out" 40 >&2; fail "nbdinfo --list does not show export $RES"; }
run_logged list-text nbdinfo --list "$LIST_URI"
grep -q "export=\"$RES\"" "$T/list-text.out" || { show_file "$T/list-text.out" >&2; fail "nbdinfo --list (text) lacks export=\"$RES\""; }
pass "nbdinfo --list shows export $RES"

# An export name that does not exist must be refused.
if run_quiet badname nbdinfo --size "nbd+unix:///no-such-export?socket=$NBD_SOCK"; then
    fail "nbdinfo on a non-existent export name succeeded"
fi
pass "unknown export name is refused"

# ---- nbdinfo --map (base:allocation) -------------------------------------
run_logged map-json nbdinfo --map=base:allocation --json "$NBD_URI"
python3 - "$T/map-json.out" "$SIZE" >"$T/map-check.out" 2>&1 <<'EOF' || { cat "$T/map-check.out" >&2; show_file "$T/map-json.out" 30 >&2; fail "nbdinfo --map"; }
import json, sys
m = json.load(open(sys.argv[1])); size = int(sys.argv[2])
if not m:
    sys.exit("empty map")
pos = 0
for e in m:
    if e["offset"] != pos:
        sys.exit("map not contiguous at %d (extent at %d)" % (pos, e["offset"]))
    if e["length"] <= 0:
        sys.exit("extent of length %d" % e["length"])
    if e["type"] & ~3:
        sys.exit("unknown base:allocation flags %d" % e["type"])
    pos += e["length"]
if pos != size:
    sys.exit("map covers %d bytes, export is %d" % (pos, size))
EOF
run_logged map-text nbdinfo --map "$NBD_URI"
run_logged map-totals nbdinfo --map --totals "$NBD_URI"
pass "nbdinfo --map (base:allocation) covers the whole export"

# ---- repd status --json nbd-uri (real daemon only) -------------------------
if [ -z "$STANDIN" ]; then
    repd_status_json || { show_file "$T/status.err" >&2; fail "repd status --json failed"; }
    SURI=$(json_query "$T/status.json" 'j[0].get("nbd-uri", "")')
    [ -n "$SURI" ] || fail "repd status --json has no nbd-uri"
    got=$(timeout 30 nbdinfo --size "$SURI" 2>"$T/suri.err") || { show_file "$T/suri.err" >&2; fail "nbdinfo on status nbd-uri '$SURI' failed"; }
    [ "$got" = "$SIZE" ] || fail "status nbd-uri '$SURI' serves $got bytes, expected $SIZE"
    pass "status nbd-uri '$SURI' serves the export"
fi
