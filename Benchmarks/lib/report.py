#!/usr/bin/env python3
"""Builds OUT/results.md (and a plain-text table on stdout) from a Benchmarks/run.sh run.

Usage: report.py OUT
Reads OUT/fio/TARGET-JOB.json (fio --output-format=json), OUT/facts.txt (key=value lines
written by run.sh) and OUT/commands.txt.  Standard library only.
"""
import json
import os
import sys

TARGETS = [
    ("raw", "raw file (libaio, O_DIRECT)"),
    ("nbdkit", "nbdkit file"),
    ("qemu", "qemu-storage-daemon active mirror"),
    ("repd1", "repd one node"),
    ("repd2", "repd two nodes (C)"),
    ("repd2tls", "repd two nodes (C, TLS)"),
]
JOBS = ["seqwrite-1M-QD8", "seqread-1M-QD8", "randwrite-4k-QD32", "randread-4k-QD32", "randwrite-4k-QD1"]
READS = ["seqread-1M-QD8", "randread-4k-QD32"]
JOB_OPTIONS = [
    ("seqwrite-1M-QD8", "--rw=write --bs=1M --iodepth=8"),
    ("seqread-1M-QD8", "--rw=read --bs=1M --iodepth=8"),
    ("randwrite-4k-QD32", "--rw=randwrite --bs=4k --iodepth=32"),
    ("randread-4k-QD32", "--rw=randread --bs=4k --iodepth=32"),
    ("randwrite-4k-QD1", "--rw=randwrite --bs=4k --iodepth=1"),
]


def load_facts(out):
    facts = {}
    try:
        for line in open(os.path.join(out, "facts.txt")):
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                facts[k] = v
    except OSError:
        pass
    return facts


def load_fio(out, target, job):
    """{'mibs', 'iops', 'p50', 'p99'} (latencies in µs) or None."""
    path = os.path.join(out, "fio", "%s-%s.json" % (target, job))
    try:
        text = open(path).read()
        j = json.loads(text[text.index("{"):])["jobs"][0]
    except (OSError, ValueError, KeyError, IndexError):
        return None
    if j.get("error"):
        return None
    d = j["write"] if "write" in job else j["read"]
    if not d.get("io_bytes"):
        return None
    pct = d.get("clat_ns", {}).get("percentile", {})
    return {
        "mibs": d["bw_bytes"] / 1048576.0,
        "iops": d["iops"],
        "p50": pct.get("50.000000", 0) / 1000.0,
        "p99": pct.get("99.000000", 0) / 1000.0,
    }


def cell(r, sep):
    if r is None:
        return "-"
    return "%.0f MiB/s %s %.0f IOPS %s %.0f/%.0f µs" % (r["mibs"], sep, r["iops"], sep, r["p50"], r["p99"])


def fnum(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def main(out):
    facts = load_facts(out)
    res = {(t, j): load_fio(out, t, j) for t, _ in TARGETS for j in JOBS}
    size = int(facts.get("param.size_bytes", "0") or 0)
    mib = size / 1048576.0
    md = []
    txt = []

    md.append("# repd benchmark results")
    md.append("")
    md.append("Date: %s. Machine: %s, %s cores, %s GiB RAM, %s, kernel %s; backing files on %s."
              % (facts.get("date", "?"), facts.get("host.cpu", "?"), facts.get("host.cores", "?"),
                 facts.get("host.mem_gib", "?"), facts.get("host.os", "?"), facts.get("host.kernel", "?"),
                 facts.get("host.fs", "?")))
    md.append("Load average at start %s, at end %s." % (facts.get("host.loadavg_start", "?"),
                                                        facts.get("host.loadavg_end", "?")))
    md.append("Versions: repd %s; %s; %s; %s; libnbd %s; %s."
              % (facts.get("ver.repd", "?"), facts.get("ver.fio", "?"), facts.get("ver.nbdkit", "?"),
                 facts.get("ver.qemu", "?"), facts.get("ver.libnbd", "?"), facts.get("ver.swift", "?")))
    md.append("Parameters: SIZE=%s, RUNTIME=%s s per job (after RAMP=%s s), targets: %s."
              % (facts.get("param.size", "?"), facts.get("param.runtime", "?"), facts.get("param.ramp", "?"),
                 facts.get("param.targets", "?")))
    md.append("")

    # ---- the table
    md.append("## fio through each server")
    md.append("")
    md.append("Each cell: MiB/s \\| IOPS \\| p50/p99 completion latency (µs).")
    md.append("")
    md.append("| job | " + " | ".join(name for _, name in TARGETS) + " |")
    md.append("|---|" + "---|" * len(TARGETS))
    for j in JOBS:
        md.append("| %s | " % j + " | ".join(cell(res[(t, j)], "\\|") for t, _ in TARGETS) + " |")
    md.append("")

    w0 = max(len(j) for j in JOBS)
    cells = {(t, j): cell(res[(t, j)], "|") for t, _ in TARGETS for j in JOBS}
    widths = [max(len(name), max(len(cells[(t, j)]) for j in JOBS)) for t, name in TARGETS]
    txt.append("%-*s  " % (w0, "job") + "  ".join("%-*s" % (w, name) for w, (_, name) in zip(widths, TARGETS)))
    for j in JOBS:
        txt.append("%-*s  " % (w0, j) + "  ".join("%-*s" % (w, cells[(t, j)]) for w, (t, _) in zip(widths, TARGETS)))
    txt.append("")

    # ---- ratios against the targets
    def ratio(a, b, job):
        ra, rb = res[(a, job)], res[(b, job)]
        if ra is None or rb is None or rb["mibs"] <= 0:
            return None
        return ra["mibs"] / rb["mibs"]

    checks = [
        ("repd two nodes / qemu mirror", "repd2", "qemu", ["seqwrite-1M-QD8"], 2.0),
        ("repd two nodes / qemu mirror", "repd2", "qemu", ["randwrite-4k-QD32"], 2.0),
        ("repd two nodes / nbdkit", "repd2", "nbdkit", ["seqwrite-1M-QD8"], 0.5),
        ("repd two nodes / nbdkit (reads)", "repd2", "nbdkit", READS, 0.9),
        ("repd one node / nbdkit", "repd1", "nbdkit", JOBS, 0.9),
    ]
    lines = []
    for label, a, b, jobs, target in checks:
        for j in jobs:
            r = ratio(a, b, j)
            if r is None:
                lines.append((label, j, "-", ">= %.1fx" % target, "not measured"))
            else:
                lines.append((label, j, "%.2fx" % r, ">= %.1fx" % target, "met" if r >= target else "NOT met"))

    # resync
    repd_s = fnum(facts.get("repd.full_sync_seconds"))
    copy_s = fnum(facts.get("nbdcopy.seconds"))
    if repd_s and copy_s:
        r = copy_s / repd_s
        lines.append(("repd full sync / nbdcopy (speed)", "%s full" % facts.get("param.size", "?"), "%.2fx" % r,
                      ">= 1.0x", "met" if r >= 1.0 else "NOT met"))
    else:
        lines.append(("repd full sync / nbdcopy (speed)", "full", "-", ">= 1.0x", "not measured"))

    # memory
    bitmap_bytes = size // 4096 // 8
    limit_kib = 64 * 1024 + bitmap_bytes / 1024.0
    rss = {k[4:]: int(v) for k, v in facts.items() if k.startswith("rss.") and v.isdigit()}
    repd_rss = {k: v for k, v in rss.items() if k.startswith("repd")}
    if repd_rss:
        worst = max(repd_rss.values())
        lines.append(("peak RSS, largest repd daemon", max(repd_rss, key=repd_rss.get), "%.1f MiB" % (worst / 1024.0),
                      "<= %.2f MiB" % (limit_kib / 1024.0), "met" if worst <= limit_kib else "NOT met"))

    md.append("## Ratios against the targets (throughput, MiB/s)")
    md.append("")
    md.append("| comparison | job | ratio | target | |")
    md.append("|---|---|---|---|---|")
    for l in lines:
        md.append("| %s | %s | %s | %s | %s |" % l)
    md.append("")
    txt.append("Ratios against the targets:")
    for l in lines:
        txt.append("  %-34s %-18s %8s  (target %s)  %s" % l)
    txt.append("")

    # all ratios, for information
    pairs = [("repd2", "qemu"), ("repd2", "nbdkit"), ("repd1", "nbdkit"), ("repd2", "repd1"), ("repd2", "raw")]
    md.append("All throughput ratios:")
    md.append("")
    md.append("| job | " + " | ".join("%s / %s" % p for p in pairs) + " |")
    md.append("|---|" + "---|" * len(pairs))
    for j in JOBS:
        vals = []
        for a, b in pairs:
            r = ratio(a, b, j)
            vals.append("-" if r is None else "%.2f" % r)
        md.append("| %s | %s |" % (j, " | ".join(vals)))
    md.append("")

    # ---- the initial sync with the rate settings nobody tuned
    sd_lines = []
    for name, label, target_mibs in [("defaults", "DRBD's defaults (c-max-rate 100 MiB/s)", 100), ("cmax4g", "c-max-rate 4G", None)]:
        secs = fnum(facts.get("syncdef.%s.seconds" % name))
        if not secs or not size:
            continue
        mibs = size / 1048576.0 / secs
        vs_max = "%.2fx c-max-rate" % (mibs / target_mibs) if target_mibs else "-"
        vs_copy = "%.2fx" % (copy_s / secs) if copy_s else "-"
        sd_lines.append("| %s | %.1f s | %.0f MiB/s | %s | %s | %s |" % (label, secs, mibs, vs_max, vs_copy,
                                                                      facts.get("syncdef.%s.identical" % name, "?")))
    if sd_lines:
        md.append("## Initial sync without tuning")
        md.append("")
        md.append("The full initial sync of %s of random data, with no disk options but the one named, in this run; "
                  "speed against nbdcopy between two nbdkit exports." % facts.get("param.size", "?"))
        md.append("")
        md.append("| rate settings | time | speed | vs c-max-rate | speed vs nbdcopy | replicas identical |")
        md.append("|---|---|---|---|---|---|")
        md.extend(sd_lines)
        md.append("")
    idle, busy = load_fio(out, "synclat", "randwrite-idle"), load_fio(out, "synclat", "randwrite-resync")
    if idle and busy and idle["p99"]:
        md.append("Application writes during that resync (DRBD's defaults, `invalidate-remote` on the synced pair; "
                  "fio randwrite 4k QD1 through alpha, %s s each; the resync ran throughout: %s):"
                  % (facts.get("param.runtime", "?"), facts.get("synclat.resync_throughout", "?")))
        md.append("")
        md.append("| | IOPS | p50 | p99 |")
        md.append("|---|---|---|---|")
        md.append("| pair in sync | %.0f | %.0f µs | %.0f µs |" % (idle["iops"], idle["p50"], idle["p99"]))
        md.append("| during the resync | %.0f | %.0f µs | %.0f µs |" % (busy["iops"], busy["p50"], busy["p99"]))
        md.append("| ratio | %.2fx | %.2fx | **%.2fx** (goal <= 2x) |" % (
            busy["iops"] / idle["iops"] if idle["iops"] else 0, busy["p50"] / idle["p50"] if idle["p50"] else 0,
            busy["p99"] / idle["p99"]))
        md.append("")

    # ---- TLS on the link
    tls_lines = []
    for j in ["seqwrite-1M-QD8", "randwrite-4k-QD32", "randwrite-4k-QD1"]:
        r = ratio("repd2tls", "repd2", j)
        if r is not None:
            tls_lines.append("| %s | %.2fx |" % (j, r))
    plain_s = fnum(facts.get("repd.full_sync_seconds"))
    tls_s = fnum(facts.get("repd2tls.full_sync_seconds"))
    if plain_s and tls_s:
        tls_lines.append("| full initial sync (%s), speed | %.2fx (%.1f s with TLS, %.1f s without) |"
                         % (facts.get("param.size", "?"), plain_s / tls_s, tls_s, plain_s))
    if tls_lines:
        md.append("## TLS on the replication link")
        md.append("")
        md.append("Throughput of the two-node pair with `tls yes` as a ratio to the same pair without TLS, in this run.")
        md.append("")
        md.append("| job | TLS / clear text |")
        md.append("|---|---|")
        md.extend(tls_lines)
        if facts.get("repd2tls.identical"):
            md.append("")
            md.append("Replicas identical after the TLS runs: %s." % facts["repd2tls.identical"])
        md.append("")

    # ---- resync
    md.append("## Resync")
    md.append("")
    md.append("| what | time | speed |")
    md.append("|---|---|---|")

    def speed(s):
        s = fnum(s)
        return ("%.2f s" % s, "%.0f MiB/s" % (mib / s)) if s else ("-", "-")

    md.append("| repd full initial sync of %s (`primary --force` until peer UpToDate) | %s | %s |"
              % ((facts.get("param.size", "?"),) + speed(facts.get("repd.full_sync_seconds"))))
    md.append("| nbdcopy between two nbdkit file exports, %s | %s | %s |"
              % ((facts.get("param.size", "?"),) + speed(facts.get("nbdcopy.seconds"))))
    md.append("| qemu blockdev-mirror sync=full until ready, %s (for information) | %s | %s |"
              % ((facts.get("param.size", "?"),) + speed(facts.get("qemu.mirror_sync_seconds"))))
    md.append("")
    md.append("repd's own log line for the full sync: `%s`" % facts.get("repd.full_sync_log", "-"))
    md.append("")
    dirty = fnum(facts.get("repd.partial.dirty_written_bytes"))
    sent = fnum(facts.get("repd.partial.sent_kib"))
    oos = fnum(facts.get("repd.partial.oos_kib_before"))
    md.append("Partial resync: beta down, %s scattered 4 KiB writes through alpha, beta up." %
              facts.get("param.dirty_blocks", "?"))
    md.append("")
    md.append("| dirty bytes written | alpha's out-of-sync before | bytes sent by alpha during the resync | sent / dirty | time |")
    md.append("|---|---|---|---|---|")
    if dirty is not None and sent is not None:
        md.append("| %d KiB | %s KiB | %d KiB | %.2f | %s s |" % (
            dirty / 1024, facts.get("repd.partial.oos_kib_before", "?"), sent,
            (sent * 1024 / dirty) if dirty else 0, facts.get("repd.partial.seconds", "?")))
    else:
        md.append("| - | - | - | - | - |")
    md.append("")
    md.append("repd's own log line for the partial resync: `%s`" % facts.get("repd.partial.log", "-"))
    md.append("")
    txt.append("Resync: repd full %s s, nbdcopy %s s, qemu mirror %s s; partial: dirty %s B, "
               "out-of-sync %s KiB, sent %s KiB in %s s" % (
                   facts.get("repd.full_sync_seconds", "-"), facts.get("nbdcopy.seconds", "-"),
                   facts.get("qemu.mirror_sync_seconds", "-"), facts.get("repd.partial.dirty_written_bytes", "-"),
                   facts.get("repd.partial.oos_kib_before", "-"), facts.get("repd.partial.sent_kib", "-"),
                   facts.get("repd.partial.seconds", "-")))

    # ---- memory
    md.append("## Peak RSS (VmHWM) of each daemon")
    md.append("")
    md.append("Target for repd: <= 64 MiB plus the bitmap (%d KiB for %s)." % (bitmap_bytes // 1024,
                                                                              facts.get("param.size", "?")))
    md.append("")
    md.append("| daemon | peak RSS |")
    md.append("|---|---|")
    for k in sorted(rss):
        md.append("| %s | %.1f MiB |" % (k, rss[k] / 1024.0))
    md.append("")
    # VmHWM after each step: shows which job made a daemon grow.
    after = {}
    for k, v in facts.items():
        if k.startswith("rss_after.") and v.isdigit():
            label, step = k[len("rss_after."):].split(".", 1)
            after.setdefault(label, []).append((step, int(v)))
    if after:
        md.append("Peak RSS so far, after each step:")
        md.append("")
        md.append("| daemon | steps (MiB) |")
        md.append("|---|---|")
        for label in sorted(after):
            md.append("| %s | %s |" % (label, ", ".join("%s %.1f" % (s, v / 1024.0) for s, v in after[label])))
        md.append("")
    txt.append("Peak RSS: " + ", ".join("%s %.1f MiB" % (k, rss[k] / 1024.0) for k in sorted(rss)))

    # ---- replicas
    md.append("## Replicas identical after the runs")
    md.append("")
    for k, label in [("qemu.identical", "qemu A and B (after block-job-cancel of the ready mirror and quit)"),
                     ("repd.identical", "repd alpha and beta (after `repd down` on both)"),
                     ("nbdcopy.identical", "nbdcopy source and destination")]:
        md.append("- %s: %s" % (label, facts.get(k, "not run")))
    if "qemu.mirror_after_runs" in facts:
        md.append("- qemu mirror job after the runs: %s" % facts["qemu.mirror_after_runs"])
    if "repd2.state_after_runs" in facts:
        md.append("- repd alpha after the runs: `%s`" % facts["repd2.state_after_runs"])
    md.append("")
    txt.append("Identical: qemu %s, repd %s" % (facts.get("qemu.identical", "-"), facts.get("repd.identical", "-")))

    fails = [v for k, v in sorted(((k, v) for k, v in facts.items() if k.startswith("failure.")),
                                  key=lambda kv: int(kv[0].split(".")[1]) if kv[0].split(".")[1].isdigit() else 0)]
    if fails:
        md.append("## Failures")
        md.append("")
        for f in fails:
            md.append("- %s" % f)
        md.append("")
        txt.append("FAILURES: " + "; ".join(fails))

    # ---- commands
    md.append("## Commands")
    md.append("")
    md.append("The fio jobs (the same for every column; RUNTIME=%s, RAMP=%s, SIZE=%s bytes):" % (
        facts.get("param.runtime", "?"), facts.get("param.ramp", "?"), facts.get("param.size_bytes", "?")))
    md.append("")
    md.append("| job | options |")
    md.append("|---|---|")
    for j, opts in JOB_OPTIONS:
        md.append("| %s | `%s` |" % (j, opts))
    md.append("")
    md.append("The servers, and the first job's full fio command for each (the others differ only in "
              "the options above; every command is in commands.txt of the results directory):")
    md.append("")
    md.append("```")
    seen = set()
    try:
        for l in open(os.path.join(out, "commands.txt")):
            l = l.rstrip("\n")
            head = l.split(":", 1)[0].split()
            if len(head) == 2 and head[1] in JOBS:          # "TARGET JOB: fio ..."
                if head[0] in seen:
                    continue
                seen.add(head[0])
            md.append(l)
    except OSError:
        pass
    md.append("```")
    md.append("")
    for name, label in [("repd2-bench.res", "repd two nodes"), ("repd2tls-bench.res", "repd two nodes with TLS (alpha's file)"),
                        ("repd1-bench.res", "repd one node (beta never started)")]:
        try:
            res_text = open(os.path.join(out, "logs", name)).read().rstrip("\n")
        except OSError:
            continue
        md.append("The resource file, %s:" % label)
        md.append("")
        md.append("```")
        md.append(res_text)
        md.append("```")
        md.append("")
    md.append("The whole run took %s s." % facts.get("elapsed_seconds", "?"))
    md.append("")

    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(md))
    print("\n".join(txt))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
