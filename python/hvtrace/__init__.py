# SPDX-License-Identifier: MIT
"""hvtrace: read hvtrace traces (format v1) from Python.

    import hvtrace
    for rec in hvtrace.iter_records("traces/demo.zst"):
        if rec["type"] == "exit":
            print(rec["seq"], rec["reason_name"], hex(rec["state"]["rip"]))

See docs/visualise.md.
"""

from .reader import (TraceError, iter_records, shadow_name, state_code_bits, state_mode,
                     state_pc, to_dataframe)

__all__ = ["TraceError", "iter_records", "to_dataframe", "state_mode", "state_code_bits",
           "state_pc", "shadow_name"]
