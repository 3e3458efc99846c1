#!/usr/bin/env python3
"""Merge a campaign's runs into RESULTS/summary.json and RESULTS/summary.md.

Reads RESULTS/runs/*/run.json (what hvcampaign run recorded), check.json
(hvreplay check --json) and guest.bin.truth (hvgen's ground truth), runs
hvreplay diff between the backends of each guest and policy, and lists
every finding with the command line that reproduces it (docs/campaigns.md).
"""
import argparse
import collections
import itertools
import json
import os
import shlex
import subprocess
import sys

SHADOW_RULES = {"sti-shadow": "sti", "mov-ss-shadow": "mov-ss"}


def read_truth(path):
    """{addr: (shadow, cause, if_set)} of the sidecar's shadow lines."""
    bounds = {}
    with open(path) as f:
        for line in f:
            w = line.split()
            if len(w) == 5 and w[0] == "shadow":
                bounds[int(w[1], 16)] = (w[2], w[3], w[4] == "if=1")
    return bounds


def repro(run):
    """One shell line that regenerates, records and checks the run."""
    return " && ".join([run["gen"], run["record"], run["check"]])


def deliveries(hvreplay, trace):
    """The linear addresses of every delivery in a trace (hvreplay dump)."""
    p = subprocess.run([hvreplay, "dump", "--format", "jsonl", trace], capture_output=True,
                       text=True)
    pcs = set()
    for line in p.stdout.splitlines():
        if '"type":"deliver"' in line:
            pcs.add(int(json.loads(line)["pc"], 16))
    return pcs


# Opcodes that load CS or SS from a descriptor or raise through the IDT:
# IRET, INT n, INT3, INTO, INT1, far JMP/CALL/RET.
LIMIT_OPCODES = {0xcf, 0xcd, 0xcc, 0xce, 0xf1, 0xea, 0x9a, 0xca, 0xcb}
PREFIXES = {0x66, 0x67, 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65} | set(range(0x40, 0x50))


def backend_limit(run):
    """Whether a KVM run stopped at an instruction kvm_pvm cannot emulate.

    docs/backends.md: on kvm_pvm, 32-bit protected-mode IRET and INT n and
    64-bit INT n end in KVM_EXIT_INTERNAL_ERROR (emulation failure); hvrec
    records that as a crash (status 203) and names the instruction's bytes.
    That is the backend's limit, not a finding about the guest or hvtrace.
    """
    msg = run.get("record_message", "")
    if not run["backend"].startswith("kvm") or run["record_status"] != 203 \
            or "(emulation failure)" not in msg or "(bytes " not in msg:
        return False
    try:
        code = [int(b, 16) for b in msg.split("(bytes ", 1)[1].split(")")[0].split()]
    except ValueError:
        return False
    code = list(itertools.dropwhile(lambda b: b in PREFIXES, code))
    return bool(code) and code[0] in LIMIT_OPCODES


def judge_truth(run, check, truth, findings, hvreplay, trace):
    """Compare the checker's shadow violations with the ground truth."""
    t = check["traces"][0]
    delivered = None  # read only when a violation needs it
    agree = explained = 0
    for v in t.get("violations", []):
        if v["rule"] not in SHADOW_RULES:
            continue
        pc = int(v["pc"], 16)
        b = truth.get(pc)
        cause = SHADOW_RULES[v["rule"]]
        if b and b[0] == "first" and (b[1] == cause or (cause == "mov-ss" and b[1] == "pop-ss")):
            agree += 1
            continue
        prev = int(v["prev"]["pc"], 16) if v.get("prev", {}).get("pc") else None
        if b and b[0] == "second" and delivered is None:
            delivered = deliveries(hvreplay, trace)
        if b and b[0] == "second" and prev in delivered:
            # An interrupt at the boundary before it: the instruction ran again
            # after the IRET, first of a new sequence (docs/checker.md).
            explained += 1
            continue
        findings.append({
            "kind": "truth-disagreement", "run": run["id"], "backend": run["backend"],
            "policy": run["policy"], "rule": v["rule"], "pc": v["pc"],
            "detail": "%s at %s, where the ground truth has %s" % (
                v["rule"], v["pc"], "%s %s" % (b[0], b[1]) if b else "no shadow"),
            "repro": repro(run)})
    missed = []
    declined = landed_elsewhere = 0
    # A run stopped at the backend's limit never reached the shadows after it.
    if run["policy"] == "eager-step" and not run.get("_limit"):
        wanted = [a for a, b in sorted(truth.items()) if b[0] == "first" and b[2]][:64]
        seen = {int(v["pc"], 16) for v in t.get("violations", [])}
        undetermined = {int(u["pc"], 16) for u in t.get("undetermined", [])}
        for a in (a for a in wanted if a not in seen):
            # The checker said why it cannot tell: not a wrong verdict.
            if a in undetermined:
                declined += 1
                continue
            # No interrupt landed there (the trigger fired elsewhere, say on a
            # later visit): nothing was judged at the shadow.
            if delivered is None:
                delivered = deliveries(hvreplay, trace)
            if a not in delivered:
                landed_elsewhere += 1
                continue
            missed.append(a)
        for a in missed:
            findings.append({
                "kind": "truth-disagreement", "run": run["id"], "backend": run["backend"],
                "policy": run["policy"], "rule": "missed", "pc": hex(a),
                "detail": "an interrupt raised at the guaranteed shadow %s (%s) is no "
                          "violation there" % (hex(a), truth[a][1]),
                "repro": repro(run)})
    return agree, explained, len(missed), declined, landed_elsewhere


def diff_pairs(hvreplay, results, runs, findings, divergences):
    """hvreplay diff between every two backends that ran a guest under a policy."""
    groups = collections.defaultdict(list)
    for r in runs:
        if r.get("_trace_ok"):
            # Only runs of the same guest bytes compare (hvgen's flavor per backend).
            groups[(r["seed"], r["mode"], r["policy"], r.get("flavor", ""))].append(r)
    pairs = 0
    for key, rs in sorted(groups.items()):
        for a, b in itertools.combinations(sorted(rs, key=lambda r: r["backend"]), 2):
            ta = os.path.join(results, "runs", a["id"], "trace.zst")
            tb = os.path.join(results, "runs", b["id"], "trace.zst")
            cmd = [hvreplay, "diff", ta, tb]
            p = subprocess.run(cmd, capture_output=True, text=True)
            pairs += 1
            if p.returncode == 0:
                continue
            lines = p.stdout.splitlines()
            first = next((i for i, l in enumerate(lines) if l.startswith("first divergence")), None)
            what = " | ".join(l.strip() for l in lines[first + 1:first + 2]) if first is not None \
                else (p.stderr.strip().splitlines() or ["status %d" % p.returncode])[0]
            d = {"kind": "divergence", "guest": "%d-%s" % (key[0], key[1]), "policy": key[2],
                 "a": a["backend"], "b": b["backend"], "status": p.returncode, "first": what,
                 "repro": " ".join(shlex.quote(c) for c in cmd)}
            divergences.append(d)
            findings.append(d)
    return pairs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hvreplay", default="hvreplay")
    ap.add_argument("results")
    args = ap.parse_args()
    results = args.results
    runs_dir = os.path.join(results, "runs")

    runs, findings, divergences = [], [], []
    status = collections.Counter()
    violations = collections.Counter()          # (rule, backend, policy) -> count
    per_guest = collections.Counter()           # (rule, backend, policy, guest) -> count
    undetermined = collections.Counter()        # (backend, policy, reason) -> count
    notes = collections.Counter()               # (backend, policy, note) -> count
    truth_stats = collections.Counter()
    incomplete = []
    for name in sorted(os.listdir(runs_dir)):
        path = os.path.join(runs_dir, name, "run.json")
        if not os.path.exists(path):
            incomplete.append(name)
            continue
        with open(path) as f:
            run = json.load(f)
        runs.append(run)
        rs = run["record_status"]
        if rs == 202 and "is not usable here" in run.get("record_message", ""):
            status["unavailable"] += 1
            run["_unavailable"] = True
            continue
        guest = "%d-%s" % (run["seed"], run["mode"])
        if backend_limit(run):
            status["backend-limit"] += 1
            run["_limit"] = True
            findings.append({"kind": "backend-limit", "run": run["id"], "backend": run["backend"],
                             "policy": run["policy"], "status": rs,
                             "detail": run.get("record_message", ""), "repro": repro(run)})
        elif rs != 0:
            status["record-status-%d" % rs] += 1
            findings.append({"kind": "record-failed", "run": run["id"], "backend": run["backend"],
                             "policy": run["policy"], "status": rs,
                             "detail": run.get("record_message", ""), "repro": repro(run)})
        else:
            status["recorded"] += 1
        cpath = os.path.join(runs_dir, name, "check.json")
        if run["check_status"] < 0 or not os.path.exists(cpath):
            continue
        with open(cpath) as f:
            check = json.load(f)
        t = check["traces"][0]
        run["_trace_ok"] = rs == 0 and t.get("readable", False)
        for v in t.get("violations", []):
            violations[(v["rule"], run["backend"], run["policy"])] += 1
            per_guest[(v["rule"], run["backend"], run["policy"], guest)] += 1
            shadow = v["rule"] in SHADOW_RULES
            if not shadow or run["policy"] == "window":
                findings.append({
                    "kind": "violation", "run": run["id"], "backend": run["backend"],
                    "policy": run["policy"], "rule": v["rule"], "pc": v.get("pc"),
                    "detail": "%s under the %s policy" % (v["rule"], run["policy"]),
                    "repro": repro(run)})
        for u in t.get("undetermined", []):
            undetermined[(run["backend"], run["policy"], u.get("why", "?"))] += 1
        for n in t.get("notes", []):
            notes[(run["backend"], run["policy"], n["kind"])] += n["count"]
        truth = read_truth(os.path.join(runs_dir, name, "guest.bin.truth"))
        a, e, m, d, el = judge_truth(run, check, truth, findings, args.hvreplay,
                                     os.path.join(runs_dir, name, "trace.zst"))
        truth_stats["agree"] += a
        truth_stats["explained-restart"] += e
        truth_stats["missed"] += m
        truth_stats["undetermined-at-shadow"] += d
        truth_stats["not-delivered-at-shadow"] += el
    pairs = diff_pairs(args.hvreplay, results, runs, findings, divergences)
    truth_stats["disagreements"] = sum(1 for f in findings if f["kind"] == "truth-disagreement")

    summary = {
        "runs": len(runs), "incomplete": incomplete, "status": dict(status),
        "violations": [{"rule": k[0], "backend": k[1], "policy": k[2], "count": c}
                       for k, c in sorted(violations.items())],
        "violations_by_guest": [{"rule": k[0], "backend": k[1], "policy": k[2], "guest": k[3],
                                 "count": c} for k, c in sorted(per_guest.items())],
        "undetermined": [{"backend": k[0], "policy": k[1], "reason": k[2], "count": c}
                         for k, c in sorted(undetermined.items())],
        "notes": [{"backend": k[0], "policy": k[1], "note": k[2], "count": c}
                  for k, c in sorted(notes.items())],
        "truth": dict(truth_stats), "diff_pairs": pairs, "divergences": divergences,
        "findings": findings,
    }
    with open(os.path.join(results, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")
    with open(os.path.join(results, "summary.md"), "w") as f:
        f.write(markdown(summary))
    sys.stdout.write(markdown(summary))
    return 0


def table(head, rows):
    out = "| " + " | ".join(head) + " |\n| " + " | ".join("---" for _ in head) + " |\n"
    for r in rows:
        out += "| " + " | ".join(str(x) for x in r) + " |\n"
    return out


def markdown(s):
    out = "# Campaign summary\n\n%d runs" % s["runs"]
    out += " (%s)" % ", ".join("%s %d" % kv for kv in sorted(s["status"].items()))
    if s["incomplete"]:
        out += "; %d incomplete" % len(s["incomplete"])
    out += ".\n\n## Violations (rule x backend x policy)\n\n"
    guests = collections.Counter((v["rule"], v["backend"], v["policy"])
                                 for v in s["violations_by_guest"])
    out += table(["rule", "backend", "policy", "violations", "guests"],
                 [(v["rule"], v["backend"], v["policy"], v["count"],
                   guests[(v["rule"], v["backend"], v["policy"])]) for v in s["violations"]])
    out += "\n## Undetermined\n\n"
    out += table(["backend", "policy", "reason", "count"],
                 [(u["backend"], u["policy"], u["reason"], u["count"]) for u in s["undetermined"]])
    t = s["truth"]
    out += ("\n## Ground truth\n\n%d violations at a guaranteed shadow, %d at a later one "
            "re-entered after an interrupt, %d raised shadows missed (judged clean), "
            "%d raised shadows judged undetermined, %d raised shadows where no interrupt "
            "landed, %d disagreements.\n"
            % (t.get("agree", 0), t.get("explained-restart", 0), t.get("missed", 0),
               t.get("undetermined-at-shadow", 0), t.get("not-delivered-at-shadow", 0),
               t.get("disagreements", 0)))
    out += "\n## Divergences between backends\n\n%d pairs of traces compared, %d differ.\n" % (
        s["diff_pairs"], len(s["divergences"]))
    out += "\n## Findings (%d)\n\n" % len(s["findings"])
    out += table(["kind", "where", "what", "reproduce"],
                 [(f["kind"], f.get("run") or "%s %s %s/%s" % (f["guest"], f["policy"], f["a"],
                                                               f["b"]),
                   f.get("detail") or f.get("first", ""), "`%s`" % f["repro"])
                  for f in s["findings"]])
    return out


if __name__ == "__main__":
    sys.exit(main())
