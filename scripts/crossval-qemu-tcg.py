#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Cross-validate `hvreplay check` against QEMU's own inhibit flag.

Records a guest on the qemu-tcg backend with HVTRACE_QEMU_DELIVERIES set,
so that the backend writes, for every delivery, the flag QEMU itself held
at the interrupted boundary.  Then, delivery by delivery, compares it with
the checker's verdict on the same delivery (a shadow violation there, an
undetermined verdict, or clean).

QEMU logs the flag at the boundary when it had begun that instruction's TB
("stopped"); when it serviced the interrupt between two TBs ("between") it
computed the flag from the instruction before, with the rule of QEMU 7.2's
translator: STI, MOV SS and POP SS inhibit unless that instruction itself
ran inhibited (only the first of a sequence does; QEMU delivers after an STI
run in a MOV SS shadow).  Both are QEMU's view, not the checker's.

Usage: crossval-qemu-tcg.py [--hvrec H] [--hvreplay R] [--guest G]
                            [--deliveries N] [--keep DIR]
Exit status: 0 when every delivery agrees, 1 when any disagrees, 2 on error.
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile


def qemu_view(row):
    """QEMU's inhibit flag at the delivery boundary: 0/1."""
    if row["logged"] == "stopped":
        return int(row["inhibit_at_boundary"])
    cls, prev_inh = row["prev_class"], int(row["prev_inhibit"])
    return 1 if cls in ("sti", "movss") and not prev_inh else 0


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    build = os.path.join(os.path.dirname(here), "build")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hvrec", default=os.path.join(build, "hvrec"))
    ap.add_argument("--hvreplay", default=os.path.join(build, "hvreplay"))
    ap.add_argument("--guest", default=os.path.join(build, "guests", "stress_pit.bin"))
    ap.add_argument("--deliveries", type=int, default=100000,
                    help="at least this many deliveries (default 100000)")
    ap.add_argument("--mode", default="real", choices=("real", "protected", "long"),
                    help="hvrec run --mode (the guest's build: stress_pit_p32.bin, _l64.bin)")
    ap.add_argument("--keep", help="keep the trace and the delivery log in this directory")
    a = ap.parse_args()
    if a.deliveries < 1:
        print("crossval: --deliveries must be at least 1", file=sys.stderr)
        return 2
    work = a.keep or tempfile.mkdtemp(prefix="hvt-crossval-")
    os.makedirs(work, exist_ok=True)
    trace = os.path.join(work, "qemu-tcg.zst")
    dlog = os.path.join(work, "deliveries.tsv")
    for f in (trace, dlog):
        if os.path.exists(f):
            os.unlink(f)
    # The stress guest delivers about once every two exits; a guest with more
    # exits per delivery gets a longer run, sized by what the first one showed
    # (-icount: the same run again, only longer).
    env = dict(os.environ, HVTRACE_QEMU_DELIVERIES=dlog)
    max_exits = 2 * a.deliveries + 1000
    for attempt in range(3):
        rec = subprocess.run([a.hvrec, "run", "--backend", "qemu-tcg", "--mode", a.mode,
                              "--max-exits", str(max_exits), "-o", trace, a.guest],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
        if rec.returncode not in (0, 204):  # 204: --max-exits reached
            print("crossval: hvrec failed (%d): %s" % (rec.returncode, rec.stderr.strip()),
                  file=sys.stderr)
            return 2
        with open(dlog) as f:
            got = sum(1 for _ in f) - 1
        if got >= a.deliveries or rec.returncode != 204:
            break
        max_exits = int(max_exits * (a.deliveries + 10) / max(got, 1) * 1.2) + 1000
        for f in (trace, dlog):
            os.unlink(f)

    with open(dlog) as f:
        head = f.readline().lstrip("# ").rstrip("\n").split("\t")
        rows = [dict(zip(head, l.rstrip("\n").split("\t"))) for l in f]
    dump = subprocess.run([a.hvreplay, "dump", "--format", "jsonl", trace],
                          capture_output=True, text=True, check=True).stdout
    delivers = [e for e in map(json.loads, dump.splitlines()) if e.get("type") == "deliver"]
    chk = json.loads(subprocess.run([a.hvreplay, "check", "--json", trace],
                                    capture_output=True, text=True).stdout)["traces"][0]
    shadowed = {v["event"]: v["rule"] for v in chk["violations"]
                if v["rule"] in ("sti-shadow", "mov-ss-shadow")}
    undet = {u.get("event") for u in chk["undetermined"]}

    # The probe sees every delivery but one still in flight when the run stopped.
    if not 0 <= len(rows) - len(delivers) <= 1:
        print("crossval: %d deliveries in QEMU's log but %d in the trace"
              % (len(rows), len(delivers)), file=sys.stderr)
        return 2
    table = collections.Counter()
    disagree = []
    for row, d in zip(rows, delivers):
        cs, ip = (int(x, 16) for x in row["boundary"].split(":"))
        # The backend logs the boundary as CS:IP in real mode, CS:rIP otherwise.
        if cs != int(d["cs"], 16) or ip != int(d["rip"], 16) & (0xFFFF if a.mode == "real"
                                                                 else ~0):
            print("crossval: delivery #%d: QEMU says %s, the trace %s:%s"
                  % (d["seq"], row["boundary"], d["cs"], d["rip"]), file=sys.stderr)
            return 2
        q = qemu_view(row)
        c = "undetermined" if d["seq"] in undet else ("shadow" if d["seq"] in shadowed
                                                      else "open")
        table[(row["logged"], q, c)] += 1
        if c == "undetermined" or (c == "shadow") != bool(q):
            disagree.append((d["seq"], row, q, c))

    n = len(delivers)
    print("%d deliveries (%s, %d exits): checker vs QEMU's inhibit flag at the boundary"
          % (n, os.path.basename(a.guest), chk["exits"]))
    print("%-8s %-6s %-13s %9s" % ("logged", "qemu", "checker", "count"))
    for (logged, q, c), k in sorted(table.items()):
        print("%-8s %-6s %-13s %9d" % (logged, "inhib" if q else "open", c, k))
    print("agree %d, disagree %d" % (n - len(disagree), len(disagree)))
    for seq, row, q, c in disagree[:20]:
        print("  #%d at %s: QEMU %s (%s, after %s), checker %s"
              % (seq, row["boundary"], "inhibited" if q else "open", row["logged"],
                 row["prev_class"], c))
    if n < a.deliveries:
        print("crossval: only %d deliveries, %d asked for" % (n, a.deliveries), file=sys.stderr)
        return 2
    return 1 if disagree else 0


if __name__ == "__main__":
    sys.exit(main())
