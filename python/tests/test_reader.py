# SPDX-License-Identifier: MIT
"""The Python reader agrees with the C reader (hvreplay dump --format jsonl)
record for record on every trace in traces/, and on damaged copies of them.

Run by ctest (test_python_reader) as:
    HVREPLAY=build/hvreplay python3 -m unittest discover -s python/tests
"""

import glob
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SOURCE, "python"))

import hvtrace  # noqa: E402
import zstandard  # noqa: E402
from hvtrace import reader as R  # noqa: E402

HVREPLAY = os.environ.get("HVREPLAY", os.path.join(SOURCE, "build", "hvreplay"))
HVREC = os.environ.get("HVREC", os.path.join(SOURCE, "build", "hvrec"))
GUESTS = os.environ.get("HV_GUEST_DIR", os.path.join(SOURCE, "build", "guests"))
TRACES = sorted(glob.glob(os.path.join(SOURCE, "traces", "*.zst")))


def hexs(v):
    return "0x%x" % v


def intr_keys(out, intr):
    if intr & R.INTR_VALID_READY:
        out["ready"] = bool(intr & R.INTR_READY)
    if intr & R.INTR_VALID_SHADOW:
        out["shadow"] = hvtrace.shadow_name(intr)
    if intr & R.INTR_VALID_IF:
        out["if"] = bool(intr & R.INTR_IF)
    if intr & R.INTR_VALID_NMI:
        out["nmi_blocked"] = bool(intr & R.INTR_NMI_BLOCKED)
    out["irq_queued"] = bool(intr & R.INTR_PENDING)
    out["window_requested"] = bool(intr & R.INTR_WINDOW_REQ)


def name(table, i):
    return table[i] if i < len(table) else "?"


def as_dump(rec):
    """A Python record in the form docs/dump-jsonl.md gives it (no "insn":
    disassembly is not the reader's business)."""
    o = {"event": rec["event"], "type": rec["type"]}
    if "vcpu" in rec:
        o["vcpu"] = rec["vcpu"]
    t = rec["type"]
    if t == "header":
        if "vcpus" in rec:
            o.update(format_version=2, vcpus=rec["vcpus"])
        else:
            o.update(format_version=1)
        o.update(tool=rec["tool"], backend=rec["backend"],
                 backend_version=rec["backend_version"], cpu_vendor=rec["cpu_vendor"],
                 cpu_model=rec["cpu_model"], kernel=rec["kernel"], guest=rec["guest"],
                 mode=name(R.MODE_NAMES, rec["guest_mode"]), load=hexs(rec["load_addr"]),
                 entry=hexs(rec["entry"]), mem_size=rec["mem_size"], seed=rec["seed"],
                 policy=name(R.POLICY_NAMES, rec["inject_policy"]),
                 single_step=bool(rec["flags"] & R.HDR_SINGLE_STEP),
                 writes=bool(rec["flags"] & R.HDR_WRITES),
                 step_inject=bool(rec["flags"] & R.HDR_STEP_INJECT),
                 backend_caps=hexs(rec["backend_caps"]), cmdline=rec["cmdline"])
    elif t == "memory":
        o.update(gpa=hexs(rec["gpa"]), len=len(rec["data"]))
    elif t == "exit":
        st = rec["state"]
        o.update(seq=rec["seq"], reason=rec["reason_name"], raw_reason=rec["raw_reason"],
                 time_ns=rec["time_ns"], guest_ns=rec["guest_ns"], mode=hvtrace.state_mode(st),
                 bits=hvtrace.state_code_bits(st), cs=hexs(st["cs"]["selector"]),
                 rip=hexs(st["rip"]), pc=hexs(hvtrace.state_pc(st)), rflags=hexs(st["rflags"]))
        intr_keys(o, st["intr"])
        o["insn_bytes"] = rec["insn"].hex()
        if "io" in rec:
            io_ = rec["io"]
            o.update(port=hexs(io_["port"]), dir="out" if io_["dir"] == 1 else "in",
                     size=io_["size"], count=io_["count"])
            o["data"] = hexs(int.from_bytes(io_["data"][:io_["size"]], "little"))
            if io_["count"] > 1:
                o["bytes"] = io_["data"].hex()
        elif "mmio" in rec:
            m = rec["mmio"]
            o.update(addr=hexs(m["addr"]), len=m["len"],
                     dir="write" if m["is_write"] else "read", data=m["data"].hex())
        elif "fail_entry" in rec:
            o.update(hw_reason=hexs(rec["fail_entry"]["hw_reason"]), cpu=rec["fail_entry"]["cpu"])
        elif "internal" in rec:
            o.update(suberror=rec["internal"]["suberror"],
                     internal_data=[hexs(v) for v in rec["internal"]["data"]])
        elif "debug" in rec:
            d = rec["debug"]
            o.update(exception=d["exception"], dr6=hexs(d["dr6"]), dr7=hexs(d["dr7"]))
        elif "exception" in rec:
            e = rec["exception"]
            o.update(exception=e["vector"], error_code=hexs(e["error_code"]), cr2=hexs(e["cr2"]))
        o["regs"] = {n: hexs(st[n]) for n in R.GPR_NAMES}
        o["sregs"] = {n: {k: hexs(st[n][k]) for k in ("selector", "base", "limit", "attr")}
                      for n in R.SREG_NAMES}
        for n in ("cr0", "cr2", "cr3", "cr4", "efer"):
            o[n] = hexs(st[n])
        for n in ("gdt", "idt"):
            o[n + "_base"] = hexs(st[n]["base"])
            o[n + "_limit"] = hexs(st[n]["limit"])
    elif t == "raise":
        o.update(seq=rec["seq"], vector=hexs(rec["vector"]),
                 source=name(R.SOURCE_NAMES, rec["source"]))
        if rec["kind"] == R.IRQ_NMI:
            o["nmi"] = True
    elif t == "inject":
        o.update(seq=rec["seq"], vector=hexs(rec["vector"]),
                 source=name(R.SOURCE_NAMES, rec["source"]))
        if rec["method"] == R.INJ_NMI:
            o["nmi"] = True
        o.update(policy=name(R.POLICY_NAMES, rec["policy"]), cs=hexs(rec["cs"]),
                 rip=hexs(rec["rip"]), pc=hexs(rec["cs_base"] + rec["rip"]),
                 rflags=hexs(rec["rflags"]), handler=hexs(rec["handler"]))
        intr_keys(o, rec["intr"])
    elif t == "deliver":
        unknown = rec["dflags"] & R.DELIVER_CS_BASE_UNKNOWN
        o.update(seq=rec["seq"], vector=hexs(rec["vector"]))
        if rec["dflags"] & R.DELIVER_NMI:
            o["nmi"] = True
        o.update(vector_from=name(R.VECTOR_FROM_NAMES, rec["vector_from"]), cs=hexs(rec["cs"]),
                 rip=hexs(rec["ip"]), pc=None if unknown else hexs(rec["cs_base"] + rec["ip"]),
                 rflags=hexs(rec["flags"]), rsp=hexs(rec["sp"]), handler=hexs(rec["handler"]),
                 frame_bits=rec["frame_bits"])
    elif t == "console":
        o.update(seq=rec["seq"], text=rec["data"].decode("latin-1"))
    elif t == "write":
        o.update(seq=rec["seq"], gpa=hexs(rec["gpa"]), len=len(rec["data"]),
                 data=rec["data"][:64].hex(), truncated=len(rec["data"]) > 64)
    elif t == "end":
        o.update(seq=rec["seq"], why=name(R.END_WHY_NAMES, rec["why"]), status=rec["status"],
                 exits=rec["exits"], wall_ns=rec["wall_ns"], last_rip=hexs(rec["last_rip"]),
                 detail=rec["detail"], message=rec["message"])
    return o


def c_dump(path):
    """hvreplay dump --format jsonl: (records without "insn", exit status)."""
    p = subprocess.run([HVREPLAY, "dump", "--format", "jsonl", path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, check=False, timeout=300)
    recs = []
    for line in p.stdout.decode("utf-8").splitlines():
        rec = json.loads(line)
        rec.pop("insn", None)
        recs.append(rec)
    return recs, p.returncode


def py_read(path):
    """(records in dump form, the TraceError or None)."""
    out = []
    try:
        for rec in hvtrace.iter_records(path):
            out.append(as_dump(rec))
    except hvtrace.TraceError as e:
        return out, e
    return out, None


class AgreesWithC(unittest.TestCase):
    def assert_same(self, path):
        want, status = c_dump(path)
        got, err = py_read(path)
        self.assertEqual(len(got), len(want), "%s: record count" % path)
        for g, w in zip(got, want):
            self.assertEqual(g, w, "%s: event %s" % (path, w.get("event")))
        # The C reader exits 2 on a damaged trace; the Python one raises.
        self.assertEqual(status == 2, err is not None,
                         "%s: C status %d, Python %r" % (path, status, err))
        self.assertIn(status, (0, 2))
        return want, err

    def test_every_sample_trace(self):
        self.assertGreater(len(TRACES), 5, "traces/ holds the sample traces")
        for path in TRACES:
            with self.subTest(trace=os.path.basename(path)):
                want, err = self.assert_same(path)
                self.assertIsNone(err)
                self.assertEqual(want[0]["type"], "header")
                self.assertEqual(want[-1]["type"], "end")
                self.assertTrue(any(r["type"] == "exit" for r in want))

    def test_nmi_records(self):
        # No sample trace holds NMIs (they are recorded on KVM): record one on emu.
        guest = os.path.join(GUESTS, "nmi_nested.bin")
        if not (os.access(HVREC, os.X_OK) and os.path.exists(guest)):
            self.skipTest("needs hvrec and the nmi_nested guest (a build)")
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "nmi.zst")
            p = subprocess.run([HVREC, "run", "--backend", "emu", "--quiet", "--inject", "eager",
                                "--nmi", "port:0x81", "--nmi", "port:0x82", "-o", path, guest],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False,
                               timeout=300)
            if b"no backend" in p.stderr or b"not compiled" in p.stderr:
                self.skipTest("emu is not compiled into hvrec")
            self.assertEqual(p.returncode, 0, p.stderr)
            want, err = self.assert_same(path)
            self.assertIsNone(err)
            for t in ("raise", "inject", "deliver"):
                self.assertEqual(sum(1 for r in want if r["type"] == t and r.get("nmi")), 2, t)

    def test_two_vcpu_trace(self):
        # Version 2, built record by record: each vCPU's exits delta-encoded on their own.
        rec = struct.Struct("<HHI")
        exit_ = struct.Struct("<IIIHBBI")

        def record(rtype, payload, flags=0):
            return rec.pack(rtype, flags, len(payload)) + payload

        def hlt(seq, rip):
            # SEQ flag, RIP (field 16) changed.
            return record(R.REC_EXIT, exit_.pack(10, 5, 1 << 16, R.EXIT_HLT, 0, 0, 12) +
                          struct.pack("<QQ", seq, rip), R.XF_SEQ)

        def vcpu(n):
            return record(R.REC_VCPU, struct.pack("<II", n, 0))

        header = struct.pack("<QQQQQIIIHH", 0x7c00, 0x7c00, 0x10000, 0, 0, 1, 0, 0, 0, 2)
        raw = (R.MAGIC + struct.pack("<HHI", 2, 2, 0) + record(R.REC_HEADER, header) +
               hlt(0, 0x7c00) + vcpu(1) + hlt(1, 0x9000) +
               record(R.REC_INJECT, struct.pack("<QQQQQIHBBBB6x", 1, 0x9000, 0x202, 0, 0, 0,
                                                0, 0x30, 0, 0, 0)) +
               vcpu(0) + record(R.REC_EXIT, exit_.pack(10, 5, 0, R.EXIT_HLT, 0, 0, 12)) +
               record(R.REC_END, struct.pack("<QQQIiII", 3, 0, 0, 1, 0, 0, 0)))
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "two.zst")
            with open(path, "wb") as f:
                f.write(zstandard.ZstdCompressor().compress(raw))
            want, err = self.assert_same(path)
            self.assertIsNone(err)
        exits = [r for r in want if r["type"] == "exit"]
        self.assertEqual([(r["vcpu"], r["seq"], r["rip"]) for r in exits],
                         [(0, 0, "0x7c00"), (1, 1, "0x9000"), (0, 1, "0x7c00")])
        self.assertEqual(want[0]["vcpus"], 2)
        self.assertEqual([r.get("vcpu") for r in want if r["type"] == "inject"], [1])
        self.assertNotIn("vcpu", want[-1])

    def test_damaged_copies_stop_at_the_same_record(self):
        # Several zstd frames: cuts fall after some records were readable.
        with open(os.path.join(SOURCE, "traces", "stress-eager-kick.zst"), "rb") as f:
            data = f.read()
        with tempfile.TemporaryDirectory() as tmp:
            for cut in (len(data) // 5, len(data) // 2, len(data) - 5):
                path = os.path.join(tmp, "cut-%d.zst" % cut)
                with open(path, "wb") as f:
                    f.write(data[:cut])
                with self.subTest(cut=cut):
                    want, err = self.assert_same(path)
                    self.assertEqual(err.kind, "truncated")
                    if cut > len(data) // 2:
                        self.assertGreater(len(want), 1000)

    def test_bad_input_is_one_error(self):
        preamble = R.MAGIC + bytes([1, 0, 1, 0, 0, 0, 0, 0])
        zst = zstandard.ZstdCompressor().compress
        cases = {b"": "empty", b"abc": "not-trace", b"not a trace at all": "not-trace",
                 b"\x28\xb5\x2f\xfd" + b"\0" * 32: "truncated",
                 zst(b"HVTRACE?" + bytes(8)): "not-trace",
                 zst(R.MAGIC + bytes([3, 0, 0, 0, 0, 0, 0, 0])): "version",
                 # a memory record first, then a header record of 4 bytes
                 zst(preamble + bytes([2, 0, 0, 0, 0, 0, 0, 0])): "corrupt",
                 zst(preamble + bytes([1, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0])): "corrupt"}
        for data, kind in cases.items():
            with self.subTest(data=data[:8]):
                with self.assertRaises(hvtrace.TraceError) as cm:
                    list(hvtrace.iter_records(io.BytesIO(data)))
                self.assertEqual(cm.exception.kind, kind)


class DataFrame(unittest.TestCase):
    def test_to_dataframe(self):
        try:
            import pandas  # noqa: F401
        except ImportError:
            with self.assertRaisesRegex(ImportError, "pandas"):
                hvtrace.to_dataframe(TRACES[0])
            self.skipTest("pandas is not installed (Debian: python3-pandas)")
        path = os.path.join(SOURCE, "traces", "demo.zst")
        want, _ = c_dump(path)
        exits = [r for r in want if r["type"] == "exit"]
        df = hvtrace.to_dataframe(path, types={"exit"})
        self.assertEqual(len(df), len(exits))
        self.assertEqual([hexs(v) for v in df["state.rip"]], [r["rip"] for r in exits])
        self.assertEqual(list(df["reason_name"]), [r["reason"] for r in exits])


if __name__ == "__main__":
    unittest.main()
