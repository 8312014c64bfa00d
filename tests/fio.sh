#!/usr/bin/env bash
# fio's NBD engine (libnbd): 4k random writes at iodepth 32 and 1M
# sequential writes, each verified with crc32c.  Any verify error fails
# (fio exit status and "error" in the JSON output).
source "$(dirname "$0")/lib.sh"

require_tool fio nbdinfo python3
fio --enghelp=nbd >/dev/null 2>&1 || skip "this fio has no nbd ioengine"

start_single_node t0 128M

# run_fio NAME [fio job options...]
run_fio() {
    local name=$1 rc=0; shift
    # In $T: fio drops *-verify.state files into its working directory.
    (cd "$T" && timeout 600 fio --name="$name" --ioengine=nbd --uri="$NBD_URI" \
        --size=64M --verify=crc32c --do_verify=1 --verify_fatal=1 \
        --verify_state_save=0 \
        --output-format=json --output="$T/$name.json" "$@") \
        >"$T/$name.out" 2>&1 </dev/null || rc=$?
    python3 - "$T/$name.json" "$rc" >"$T/$name.check" 2>&1 <<'EOF' || { show_file "$T/$name.out" 40 >&2; show_file "$T/$name.check" 20 >&2; fail "fio job $name"; }
import json, sys
path, rc = sys.argv[1], int(sys.argv[2])
try:
    text = open(path).read()
    # fio may print notes before the JSON document.
    j = json.loads(text[text.index("{"):])
except Exception as e:
    sys.exit("fio exit %d, no usable JSON output (%s)" % (rc, e))
errs = []
if rc != 0:
    errs.append("fio exit status %d" % rc)
for job in j.get("jobs", []):
    if job.get("error", 0) != 0:
        errs.append("job %s: error %d" % (job.get("jobname"), job["error"]))
    w = job["write"]["io_bytes"]; r = job["read"]["io_bytes"]
    if w != 64 << 20:
        errs.append("job %s wrote %d bytes, expected 64 MiB" % (job.get("jobname"), w))
    if r != 64 << 20:
        errs.append("job %s verified (read) %d bytes, expected 64 MiB" % (job.get("jobname"), r))
if not j.get("jobs"):
    errs.append("no jobs in fio output")
if errs:
    sys.exit("; ".join(errs))
EOF
    if grep -Eiq 'verify: bad|bad magic|crc32c.*(mismatch|bad)' "$T/$name.out" "$T/$name.json"; then
        show_file "$T/$name.out" 40 >&2
        fail "fio job $name reported a verify error"
    fi
}

run_fio randwrite4k --rw=randwrite --bs=4k --iodepth=32
pass "fio 4k randwrite iodepth=32, 64 MiB, crc32c verify"

run_fio seqwrite1m --rw=write --bs=1M --iodepth=8 --offset=64M
pass "fio 1M sequential write iodepth=8, 64 MiB, crc32c verify"

# Mixed: random 64k read/write across the whole export with verify of
# what was written (exercises reads racing writes on several requests).
run_fio randwrite64k-backlog --rw=randwrite --bs=64k --iodepth=16 --offset=0 --verify_backlog=256
pass "fio 64k randwrite with verify_backlog (interleaved verify)"
