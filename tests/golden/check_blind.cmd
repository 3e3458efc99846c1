check traces/not-ready-blind.zst
