#!/bin/bash
# A small campaign on GNU parallel: a first pass whose runs all fail (no
# tools), then --resume-failed runs exactly those again, through
# --sshloginfile with the local machine (":"); then the merge
# (docs/campaigns.md).  Usage: parallel-test.sh BUILD_DIR.  Exit 77: skipped.
set -euo pipefail

build=$(cd "${1:?usage: parallel-test.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
campaign=$here/../../scripts/campaign/hvcampaign

for t in parallel python3 jq; do
        if ! command -v "$t" >/dev/null; then
                echo "SKIP: $t is not installed (scripts/deps.sh installs it)"
                exit 77
        fi
done

tmp=$(mktemp -d /tmp/hvcampaign-parallel.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() {
        echo "FAIL: $*"
        exit 1
}

# 8 runs: kvm is there only with /dev/kvm; without, its runs say so.
"$campaign" plan --seeds 3-3 --modes real,protected --backends emu,kvm \
        --policies window,eager-step >"$tmp/plan"
[ "$(wc -l <"$tmp/plan")" = 8 ] || fail "the plan has $(wc -l <"$tmp/plan") runs, not 8"

# Pass 1: no tools where HVTRACE_BIN points, so every run fails.
if HVTRACE_BIN=$tmp/none "$campaign" parallel "$tmp/plan" "$tmp/results" --jobs 2 \
        >"$tmp/pass1.out" 2>&1; then
        fail "pass 1 succeeded without tools"
fi
log=$tmp/results/joblog
[ "$(awk 'NR > 1 && $7 != 0' "$log" | wc -l)" = 8 ] || fail "pass 1: not 8 failed jobs in the joblog"

# Pass 2: the failed ones again, on the local machine as an ssh login.
echo ":" >"$tmp/sshlogins"
HVTRACE_BIN=$build "$campaign" parallel "$tmp/plan" "$tmp/results" --jobs 2 --resume-failed \
        --sshloginfile "$tmp/sshlogins" >"$tmp/pass2.out" 2>&1 || fail "pass 2: $(cat "$tmp/pass2.out")"
[ "$(awk 'NR > 1' "$log" | wc -l)" = 16 ] || fail "the joblog has $(awk 'NR > 1' "$log" | wc -l) jobs, not 16"
[ "$(awk 'NR > 9 && $7 == 0' "$log" | wc -l)" = 8 ] || fail "pass 2: not 8 successful jobs"

# Pass 3: nothing failed, nothing runs again.
HVTRACE_BIN=$build "$campaign" parallel "$tmp/plan" "$tmp/results" --jobs 2 --resume-failed \
        >/dev/null 2>&1 || fail "pass 3 failed"
[ "$(awk 'NR > 1' "$log" | wc -l)" = 16 ] || fail "pass 3 ran jobs again"

# Without the tools: one line and status 2, not a traceback (an empty PATH entry is none).
if ! PATH=/usr/bin:/bin command -v hvreplay >/dev/null; then
        st=0
        err=$(env -u HVTRACE_BIN PATH=/usr/bin:/bin "$campaign" merge "$tmp/results" 2>&1) || st=$?
        [ "$st" = 2 ] && [ "$(printf '%s\n' "$err" | wc -l)" = 1 ] &&
                [[ $err == *"hvreplay is not on PATH"* ]] ||
                fail "merge without hvreplay: status $st: $err"
fi

HVTRACE_BIN=$build "$campaign" merge "$tmp/results" >/dev/null || fail "merge failed"
s=$tmp/results/summary.json
[ "$(jq .runs "$s")" = 8 ] || fail "summary counts $(jq .runs "$s") runs"
rec=$(jq '.status.recorded // 0' "$s")
unavail=$(jq '.status.unavailable // 0' "$s")
limit=$(jq '.status["backend-limit"] // 0' "$s")
# Usable, not merely present: the nokvm pass hides /dev/kvm behind /dev/null.
if "$build/hvrec" run --backend help 2>&1 | grep -A1 '^  kvm ' | grep -q '^ *usable here:'; then
        # kvm_pvm stops protected-mode guests at their first IRET or INT
        # (docs/backends.md): a backend-limit finding, never on emu.
        [ $((rec + limit)) = 8 ] || fail "$rec of 8 runs recorded, $limit at the backend's limit: $(jq -c .status "$s")"
        [ "$(jq '[.findings[] | select(.kind == "backend-limit" and .backend == "emu")] | length' "$s")" = 0 ] ||
                fail "emu has a backend-limit finding"
else
        if [ "$rec" != 4 ] || [ "$unavail" != 4 ]; then
                fail "without a usable /dev/kvm: $(jq -c .status "$s")"
        fi
fi
[ "$(jq '.truth.agree' "$s")" -gt 0 ] || fail "no violation at a ground-truth shadow"
[ "$(jq '.truth.disagreements' "$s")" = 0 ] || fail "truth disagreements: $(jq -c .findings "$s")"
# Every finding carries the command line that reproduces it.
[ "$(jq '[.findings[] | select((.repro // "") == "")] | length' "$s")" = 0 ] ||
        fail "a finding without a reproduction command"
# The merge must see a disagreement: a copy whose truth has lost one
# guaranteed shadow that got its violation.
cp -r "$tmp/results" "$tmp/altered"
run=$tmp/altered/runs/3-real-emu-eager-step
addr=$(jq -r '[.traces[0].violations[].pc] | first' "$run/check.json")
[ "$addr" != null ] || fail "3-real-emu-eager-step has no violation to hide"
sed -i "/^shadow $addr first /d" "$run/guest.bin.truth"
HVTRACE_BIN=$build "$campaign" merge "$tmp/altered" >/dev/null || fail "merge of the copy failed"
a=$tmp/altered/summary.json
[ "$(jq '.truth.disagreements' "$a")" -ge 1 ] || fail "a violation outside the truth went unnoticed"
jq -e --arg pc "$addr" '.findings[] | select(.kind == "truth-disagreement" and .pc == $pc
        and (.repro | test("hvgen --seed 3 --mode real .*&& .*hvrec run --backend emu")))' \
        "$a" >/dev/null || fail "no truth-disagreement at $addr with its reproduction: $(jq -c .findings "$a")"

echo "PASS: 8 runs on GNU parallel, resumed after failing, merged ($(jq -c .status "$s"))"
