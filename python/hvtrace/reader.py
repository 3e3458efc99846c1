# SPDX-License-Identifier: MIT
"""A pure-Python reader of hvtrace trace format v1 and v2 (several vCPUs).

include/hvtrace/format.h is the contract; src/trace/reader.c is the
reference reader.  This module decodes the same records with the same
checks, so a trace the C reader refuses is refused here too, at the same
record and for the same reason (the wording may differ).
"""

import struct

import zstandard

MAGIC = b"HVTRACE\x1a"
FORMAT_VERSION = 2  # the highest major version known
FORMAT_VERSION_1VCPU = 1  # single-vCPU traces
MAX_RECORD = 16 << 20
# As the C reader: a long run of records of unknown types is corrupt data.
MAX_SKIPPED_RUN = 1 << 20
ZSTD_MAGIC = 0xFD2FB528

REC_HEADER, REC_MEMORY, REC_EXIT, REC_INJECT, REC_DELIVER = 1, 2, 3, 4, 5
REC_CONSOLE, REC_END, REC_RAISE, REC_WRITE = 6, 7, 8, 9
REC_VCPU = 10  # version 2: the records after it are another vCPU's (never yielded)
REC_TYPE_COUNT = 11
# The records a VCPU record assigns to a vCPU; the others are machine-wide.
VCPU_RECORDS = {REC_EXIT, REC_INJECT, REC_RAISE, REC_DELIVER, REC_CONSOLE}

REC_TYPE_NAMES = {
    REC_HEADER: "header", REC_MEMORY: "memory", REC_EXIT: "exit", REC_INJECT: "inject",
    REC_DELIVER: "deliver", REC_CONSOLE: "console", REC_END: "end", REC_RAISE: "raise",
    REC_WRITE: "write", REC_VCPU: "vcpu",
}

EXIT_IO, EXIT_MMIO, EXIT_HLT, EXIT_INTR, EXIT_IRQ_WINDOW = 1, 2, 3, 4, 5
EXIT_DEBUG, EXIT_SHUTDOWN, EXIT_FAIL_ENTRY, EXIT_INTERNAL, EXIT_EXCEPTION = 6, 7, 8, 9, 10
EXIT_REASON_NAMES = ["unknown", "io", "mmio", "hlt", "intr", "irq-window", "debug",
                     "shutdown", "fail-entry", "internal-error", "exception"]

XF_SEQ = 0x0001
XF_TIME64 = 0x0002

MODE_NAMES = ["unknown", "real", "protected", "long"]
POLICY_NAMES = ["window", "eager", "blind", "backend"]
SOURCE_NAMES = ["guest", "irq-option", "kick", "vmm"]
END_WHY_NAMES = ["?", "guest-exit", "halt", "crash", "max-exits", "timeout", "signal", "error"]
VECTOR_FROM_NAMES = ["unknown", "table", "injection"]

HDR_SINGLE_STEP, HDR_KICKS, HDR_WRITES, HDR_STEP_INJECT = 0x1, 0x2, 0x4, 0x8

INTR_STI_SHADOW = 0x0001
INTR_MOVSS_SHADOW = 0x0002
INTR_NMI_BLOCKED = 0x0004
INTR_READY = 0x0008
INTR_IF = 0x0010
INTR_PENDING = 0x0020
INTR_WINDOW_REQ = 0x0040
INTR_VALID_SHADOW = 0x0100
INTR_VALID_NMI = 0x0200
INTR_VALID_READY = 0x0400
INTR_VALID_IF = 0x0800
INTR_VALID_PENDING = 0x1000

SEG_L = 0x0200
SEG_DB = 0x0400
CR0_PE = 0x1
EFER_LMA = 0x400

DELIVER_CS_BASE_UNKNOWN = 0x01
DELIVER_NMI = 0x02  # format minor 2: the delivery answers an NMI injection
INJ_NMI = 3  # inject.method: a non-maskable interrupt
IRQ_NMI = 1  # raise.kind: a non-maskable interrupt

STR_KEYS = {1: "tool", 2: "backend", 3: "backend_version", 4: "cpu_vendor", 5: "cpu_model",
            6: "kernel", 7: "cmdline", 8: "guest"}

GPR_NAMES = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
             "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"]
SREG_NAMES = ["es", "cs", "ss", "ds", "fs", "gs"]

# State fields in bit order of hvt_disk_exit.state_mask: (name, kind).
FIELDS = ([(n, "u64") for n in GPR_NAMES] + [("rip", "u64"), ("rflags", "u64")] +
          [(n, "seg") for n in SREG_NAMES] +
          [(n, "u64") for n in ("cr0", "cr2", "cr3", "cr4", "efer")] +
          [("gdt", "dtable"), ("idt", "dtable"), ("intr", "u64")])
assert len(FIELDS) == 32

_PREAMBLE = struct.Struct("<8sHHI")
_REC = struct.Struct("<HHI")
_HEADER = struct.Struct("<QQQQQIIIHH")
_VCPU = struct.Struct("<II")
_STR = struct.Struct("<HH")
_MEMORY = struct.Struct("<QQ")
_SEG = struct.Struct("<QIHH")
_DTABLE = struct.Struct("<QH6x")
_EXIT = struct.Struct("<IIIHBBI")
_IO = struct.Struct("<HBBI")
_MMIO = struct.Struct("<QIB3x8s")
_FAIL_ENTRY = struct.Struct("<QII")
_INTERNAL = struct.Struct("<II")
_DEBUG = struct.Struct("<IIQQQ")
_EXCEPTION = struct.Struct("<IIQ")
_INJECT = struct.Struct("<QQQQQIHBBBB6x")
_RAISE = struct.Struct("<QBBB5x")
_DELIVER = struct.Struct("<QQQQQQHHBBBB")
_WRITE = struct.Struct("<QQ")
_CONSOLE = struct.Struct("<Q")
_END = struct.Struct("<QQQIiII")
_U64 = struct.Struct("<Q")

assert _HEADER.size == 56 and _SEG.size == 16 and _DTABLE.size == 16 and _EXIT.size == 20
assert _INJECT.size == 56 and _RAISE.size == 16 and _DELIVER.size == 56 and _END.size == 40
assert _MMIO.size == 24 and _DEBUG.size == 32 and _EXCEPTION.size == 16


class TraceError(Exception):
    """The trace cannot be read (further).  `kind` is one of "empty",
    "not-trace", "version", "corrupt", "truncated", as the C reader's
    HVT_ERR_* codes; records before the damage have been yielded."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


def _zero_state():
    st = {n: 0 for n, kind in FIELDS if kind == "u64"}
    for n in SREG_NAMES:
        st[n] = {"base": 0, "limit": 0, "selector": 0, "attr": 0}
    st["gdt"] = {"base": 0, "limit": 0}
    st["idt"] = {"base": 0, "limit": 0}
    return st


def _copy_state(st):
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in st.items()}


def state_mode(st):
    """"real", "protected" or "long", from CR0.PE and EFER.LMA (as x86_mode)."""
    if not st["cr0"] & CR0_PE:
        return "real"
    return "long" if st["efer"] & EFER_LMA else "protected"


def state_code_bits(st):
    """The code size at RIP: 16, 32 or 64 (as hvt_state_code_bits)."""
    mode = state_mode(st)
    attr = st["cs"]["attr"]
    if mode == "real":
        return 16
    if mode == "long" and attr & SEG_L:
        return 64
    return 32 if attr & SEG_DB else 16


def state_pc(st):
    """The linear address of CS:RIP (as hvt_state_pc)."""
    bits = state_code_bits(st)
    if bits == 64:
        return st["rip"]
    if bits == 32:
        return (st["cs"]["base"] + (st["rip"] & 0xFFFFFFFF)) & 0xFFFFFFFF
    return st["cs"]["base"] + (st["rip"] & 0xFFFF)


def shadow_name(intr):
    return ["none", "sti", "mov-ss", "sti+mov-ss"][intr & (INTR_STI_SHADOW | INTR_MOVSS_SHADOW)]


class _Stream:
    """The raw stream: zstd frames decompressed one after another."""

    CHUNK = 1 << 17

    def __init__(self, f):
        self.f = f
        self.buf = bytearray()
        self.pos = 0
        self.dctx = zstandard.ZstdDecompressor()
        self.dobj = None
        self.pending = b""  # compressed bytes not yet fed
        self.in_eof = False
        self.in_frame = False  # a frame has started and not finished

    def _pump(self):
        """Decompress more; False when the input is exhausted."""
        if not self.pending:
            if self.in_eof:
                return False
            self.pending = self.f.read(self.CHUNK)
            if not self.pending:
                self.in_eof = True
                return False
        if self.dobj is None:
            self.dobj = self.dctx.decompressobj()
        data, self.pending = self.pending, b""
        try:
            out = self.dobj.decompress(data)
        except zstandard.ZstdError as e:
            raise TraceError("corrupt", "corrupt compressed data: %s" % e) from None
        self.in_frame = True
        if self.dobj.eof:
            self.pending = self.dobj.unused_data
            self.dobj = None
            self.in_frame = False
        if self.pos > (1 << 20):
            del self.buf[:self.pos]
            self.pos = 0
        self.buf += out
        return True

    def want(self, n):
        """True if n raw bytes are available, False if the stream ended cleanly
        before any of them ("truncated" if inside them or inside a frame)."""
        while len(self.buf) - self.pos < n:
            if not self._pump():
                if self.in_frame or len(self.buf) > self.pos:
                    return "truncated"
                return False
        return True

    def take(self, n):
        b = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return b

    def leftover(self):
        return len(self.buf) - self.pos


class _Cursor:
    def __init__(self, data, rec_index):
        self.data = data
        self.off = 0
        self.rec_index = rec_index

    def take(self, n):
        if n > len(self.data) - self.off:
            raise TraceError("corrupt", "corrupt trace: record %d: exit record too short"
                             % self.rec_index)
        b = self.data[self.off:self.off + n]
        self.off += n
        return b

    def unpack(self, st):
        return st.unpack(self.take(st.size))


class _Vcpu:
    """One vCPU's delta-decoding state."""

    def __init__(self):
        self.have_exit = False
        self.seq = 0
        self.time_ns = 0
        self.state = _zero_state()


class _Reader:
    def __init__(self, version):
        self.version = version
        self.records = 0
        self.have_header = False
        self.saw_end = False
        self.nvcpus = 1
        self.vcpus = [_Vcpu()]
        self.cur = 0
        self.any_exit = False
        self.max_seq = 0  # the highest seq of any vCPU, for machine-wide records

    @property
    def v(self):
        return self.vcpus[self.cur]

    def fail(self, msg):
        raise TraceError("corrupt", "corrupt trace: record %d: %s" % (self.records, msg))

    def fixed(self, st, payload, what):
        if len(payload) < st.size:
            self.fail("%s record too short" % what)
        return st.unpack_from(payload)

    def names_exit(self, seq, what, have_exit=None, last=None):
        if have_exit is None:
            have_exit, last = self.v.have_exit, self.v.seq
        if not have_exit:
            self.fail("%s names exit %d before any exit" % (what, seq))
        if seq > last:
            self.fail("%s names exit %d after exit %d" % (what, seq, last))

    def select(self, p):
        if len(p) < _VCPU.size:
            self.fail("vcpu record too short")
        vcpu, _ = _VCPU.unpack_from(p)
        if vcpu >= self.nvcpus:
            self.fail("vCPU %d of a %d-vCPU trace" % (vcpu, self.nvcpus))
        self.cur = vcpu

    def header(self, p):
        if len(p) < _HEADER.size:
            raise TraceError("corrupt", "corrupt trace: header record too short")
        (load, entry, mem_size, seed, start_ns, mode, flags, caps, policy,
         vcpus) = _HEADER.unpack_from(p)
        rec = {"load_addr": load, "entry": entry, "mem_size": mem_size, "seed": seed,
               "start_realtime_ns": start_ns, "guest_mode": mode, "flags": flags,
               "backend_caps": caps, "inject_policy": policy}
        # Version 1 had the field reserved: whatever it holds, one vCPU.
        if self.version > FORMAT_VERSION_1VCPU:
            if vcpus < 2:
                raise TraceError("corrupt", "corrupt trace: a version %d header declares %d "
                                 "vCPUs" % (self.version, vcpus))
            self.nvcpus = vcpus
            self.vcpus = [_Vcpu() for _ in range(vcpus)]
            rec["vcpus"] = vcpus
        rec.update({name: "" for name in STR_KEYS.values()})
        rec["cmdline"] = []
        off = _HEADER.size
        while off + _STR.size <= len(p):
            key, n = _STR.unpack_from(p, off)
            off += _STR.size
            if n > len(p) - off:
                raise TraceError("corrupt", "corrupt trace: header string overruns")
            text = p[off:off + n]
            if key == 7:
                # argv, each argument NUL-terminated; a tail without one is dropped as in C.
                rec["cmdline"] = [a.decode("latin-1") for a in text.split(b"\0")[:-1]]
            elif key in STR_KEYS:
                # C stops at the first NUL (the string is NUL-terminated there).
                rec[STR_KEYS[key]] = text.split(b"\0", 1)[0].decode("latin-1")
            off += n
        return rec

    def exit(self, flags, p):
        v = self.v
        c = _Cursor(p, self.records)
        dt, gns, mask, reason, insn_len, _, raw_reason = c.unpack(_EXIT)
        if flags & XF_SEQ:
            (seq,) = c.unpack(_U64)
            if v.have_exit and seq <= v.seq:
                self.fail("exit %d after exit %d" % (seq, v.seq))
        elif not v.have_exit:
            seq = 0
        else:
            if v.seq == (1 << 64) - 1:
                self.fail("exit after exit %d" % v.seq)
            seq = v.seq + 1
        if flags & XF_TIME64:
            dt_hi, g_hi = c.unpack(struct.Struct("<II"))
            dt |= dt_hi << 32
            gns |= g_hi << 32
        st = v.state
        for f in range(32):
            if not mask & (1 << f):
                continue
            name, kind = FIELDS[f]
            if kind == "u64":
                (st[name],) = c.unpack(_U64)
            elif kind == "seg":
                base, limit, sel, attr = c.unpack(_SEG)
                st[name] = {"base": base, "limit": limit, "selector": sel, "attr": attr}
            else:
                base, limit = c.unpack(_DTABLE)
                st[name] = {"base": base, "limit": limit}
        if insn_len > 15:
            self.fail("instruction length %d" % insn_len)
        insn = c.take(insn_len)
        v.time_ns = (v.time_ns + dt) & ((1 << 64) - 1)
        v.seq = seq
        v.have_exit = True
        self.max_seq = seq if not self.any_exit else max(self.max_seq, seq)
        self.any_exit = True
        rec = {"seq": seq, "time_ns": v.time_ns, "dt_ns": dt, "guest_ns": gns,
               "reason": reason,
               "reason_name": EXIT_REASON_NAMES[reason] if reason < len(EXIT_REASON_NAMES)
               else "unknown",
               "raw_reason": raw_reason, "changed": mask, "state": _copy_state(st),
               "insn": insn}
        if reason == EXIT_IO:
            port, size, direction, count = c.unpack(_IO)
            if size not in (1, 2, 4):
                self.fail("I/O size %d" % size)
            if not count:
                self.fail("I/O count 0")
            data = c.take(size * count)
            rec["io"] = {"port": port, "size": size, "dir": direction, "count": count,
                         "data": data}
        elif reason == EXIT_MMIO:
            addr, length, is_write, data = c.unpack(_MMIO)
            if length < 1 or length > 8:
                self.fail("MMIO length %d" % length)
            rec["mmio"] = {"addr": addr, "len": length, "is_write": is_write,
                           "data": data[:length]}
        elif reason == EXIT_FAIL_ENTRY:
            hw, cpu, _ = c.unpack(_FAIL_ENTRY)
            rec["fail_entry"] = {"hw_reason": hw, "cpu": cpu}
        elif reason == EXIT_INTERNAL:
            sub, ndata = c.unpack(_INTERNAL)
            if ndata > 16:
                self.fail("ndata %d" % ndata)
            data = list(struct.unpack("<%dQ" % ndata, c.take(8 * ndata)))
            rec["internal"] = {"suberror": sub, "data": data}
        elif reason == EXIT_DEBUG:
            exc, _, pc, dr6, dr7 = c.unpack(_DEBUG)
            rec["debug"] = {"exception": exc, "pc": pc, "dr6": dr6, "dr7": dr7}
        elif reason == EXIT_EXCEPTION:
            vec, err, cr2 = c.unpack(_EXCEPTION)
            rec["exception"] = {"vector": vec, "error_code": err, "cr2": cr2}
        return rec

    def decode(self, rtype, flags, p):
        if rtype == REC_HEADER:
            if self.have_header:
                raise TraceError("corrupt", "corrupt trace: second header at record %d"
                                 % self.records)
            rec = self.header(p)
            self.have_header = True
            return rec
        if rtype == REC_MEMORY:
            gpa, _ = self.fixed(_MEMORY, p, "memory")
            return {"gpa": gpa, "data": p[_MEMORY.size:]}
        if rtype == REC_EXIT:
            return self.exit(flags, p)
        if rtype == REC_INJECT:
            (after, rip, rflags, cs_base, handler, intr, cs, vector, policy, method,
             source) = self.fixed(_INJECT, p, "inject")
            self.names_exit(after, "inject")
            return {"seq": after, "rip": rip, "rflags": rflags, "cs_base": cs_base,
                    "handler": handler, "intr": intr, "cs": cs, "vector": vector,
                    "policy": policy, "method": method, "source": source}
        if rtype == REC_RAISE:
            seq, vector, source, kind = self.fixed(_RAISE, p, "raise")
            self.names_exit(seq, "raise")
            return {"seq": seq, "vector": vector, "source": source, "kind": kind}
        if rtype == REC_DELIVER:
            (seq, ip, fl, sp, cs_base, handler, cs, ss, vector, vfrom, frame_bits,
             dflags) = self.fixed(_DELIVER, p, "deliver")
            self.names_exit(seq, "deliver")
            return {"seq": seq, "ip": ip, "flags": fl, "sp": sp, "cs_base": cs_base,
                    "handler": handler, "cs": cs, "ss": ss, "vector": vector,
                    "vector_from": vfrom, "frame_bits": frame_bits, "dflags": dflags}
        if rtype == REC_CONSOLE:
            (seq,) = self.fixed(_CONSOLE, p, "console")
            self.names_exit(seq, "console")
            return {"seq": seq, "data": p[8:]}
        if rtype == REC_WRITE:
            seq, gpa = self.fixed(_WRITE, p, "write")
            self.names_exit(seq, "write", self.any_exit, self.max_seq)
            return {"seq": seq, "gpa": gpa, "data": p[_WRITE.size:]}
        # REC_END
        exits, wall, last_rip, why, status, detail, _ = self.fixed(_END, p, "end")
        self.saw_end = True
        # The C reader terminates the message at its first NUL.
        msg = p[_END.size:].split(b"\0", 1)[0]
        return {"seq": exits, "exits": exits, "wall_ns": wall, "last_rip": last_rip,
                "why": why, "status": status, "detail": detail,
                "message": msg.decode("latin-1")}


def _start(f):
    head = f.read(4)
    if not head:
        raise TraceError("empty", "empty file")
    if len(head) < 4:
        raise TraceError("not-trace", "not an hvtrace trace (only %d bytes)" % len(head))
    if struct.unpack("<I", head)[0] != ZSTD_MAGIC:
        raise TraceError("not-trace", "not an hvtrace trace (not zstd-compressed)")
    s = _Stream(f)
    s.pending = head
    ok = s.want(_PREAMBLE.size)
    if ok is not True:
        n = min(s.leftover(), len(MAGIC))
        if n and bytes(s.buf[s.pos:s.pos + n]) != MAGIC[:n]:
            raise TraceError("not-trace", "not an hvtrace trace (bad magic)")
        raise TraceError("truncated", "truncated header")
    magic, version, minor, _ = _PREAMBLE.unpack(s.take(_PREAMBLE.size))
    if magic != MAGIC:
        raise TraceError("not-trace", "not an hvtrace trace (bad magic)")
    if not FORMAT_VERSION_1VCPU <= version <= FORMAT_VERSION:
        raise TraceError("version", "unsupported trace format version %d.%d (this reader "
                         "knows %d)" % (version, minor, FORMAT_VERSION))
    return s, version


def iter_records(path):
    """Yield every record of the trace at `path` (a path or a binary file
    object) in trace order, as a dict.

    Every record has "event" (its number in the trace, from 0, counting
    skipped records of unknown types as the C reader does) and "type"
    ("header", "memory", "exit", "inject", "raise", "deliver", "console",
    "write", "end").  The other keys follow the hvt_disk_* struct of the
    record in include/hvtrace/format.h, as integers and bytes.  An exit's
    "state" is the full vCPU state after delta decoding (a copy per exit);
    "changed" is the mask of fields the record carried.  Records that name
    an exit carry it as "seq".  In a multi-vCPU trace (format version 2)
    the header has "vcpus", and exits, injections, raises, deliveries and
    console records have "vcpu"; each vCPU's exits are delta-decoded on
    their own.

    A trace that cannot be read completely raises TraceError after the
    records before the damage have been yielded.
    """
    if hasattr(path, "read"):
        yield from _iter_file(path)
        return
    with open(path, "rb") as f:
        yield from _iter_file(f)


def _iter_file(f):
    s, version = _start(f)
    r = _Reader(version)
    skipped_run = vcpu_run = 0
    while True:
        ok = s.want(_REC.size)
        if ok is False:
            if not r.saw_end:
                raise TraceError("truncated", "truncated after %d records (no end record: "
                                 "the recorder was stopped abruptly)" % r.records)
            return
        if r.saw_end and (ok is True or s.leftover()):
            r.fail("data after the end record")
        if ok == "truncated":
            raise TraceError("truncated", "truncated after %d records (incomplete zstd frame)"
                             % r.records)
        rtype, flags, size = _REC.unpack_from(s.buf, s.pos)
        if size > MAX_RECORD:
            raise TraceError("corrupt", "corrupt trace: record %d claims %d bytes"
                             % (r.records, size))
        if not r.have_header and rtype != REC_HEADER:
            raise TraceError("corrupt", "corrupt trace: first record is not a header")
        if rtype == 0:
            r.fail("type 0 (reserved, never written)")
        if s.want(_REC.size + size) is not True:
            raise TraceError("truncated", "truncated after %d records (incomplete record)"
                             % r.records)
        s.pos += _REC.size
        payload = s.take(size)
        if rtype == REC_VCPU and version > FORMAT_VERSION_1VCPU:
            r.select(payload)
            vcpu_run += 1
            if vcpu_run > MAX_SKIPPED_RUN:
                r.fail("more than %d vcpu records in a row" % MAX_SKIPPED_RUN)
            r.records += 1
            continue
        # Version 1 never had VCPU records: one is skipped like any unknown type.
        if rtype >= REC_TYPE_COUNT or rtype == REC_VCPU:
            r.records += 1
            skipped_run += 1
            if skipped_run > MAX_SKIPPED_RUN:
                raise TraceError("corrupt", "corrupt trace: more than %d records of unknown "
                                 "types in a row" % MAX_SKIPPED_RUN)
            continue
        skipped_run = vcpu_run = 0
        rec = {"event": r.records, "type": REC_TYPE_NAMES[rtype]}
        if r.nvcpus > 1 and rtype in VCPU_RECORDS:
            rec["vcpu"] = r.cur
        rec.update(r.decode(rtype, flags, payload))
        r.records += 1
        yield rec


def _flatten(rec, prefix=""):
    out = {}
    for k, v in rec.items():
        if isinstance(v, dict):
            out.update(_flatten(v, prefix + k + "."))
        elif isinstance(v, list):
            out[prefix + k] = tuple(v)
        else:
            out[prefix + k] = v
    return out


def to_dataframe(path, types=None):
    """A pandas DataFrame with one row per record (only those whose type is
    in `types`, if given), nested keys flattened with dots ("state.rip",
    "io.port").  Needs pandas; raises ImportError saying so without it."""
    try:
        import pandas
    except ImportError as e:
        raise ImportError("hvtrace.to_dataframe needs pandas (Debian: python3-pandas)") from e
    rows = [_flatten(r) for r in iter_records(path) if types is None or r["type"] in types]
    return pandas.DataFrame(rows)
