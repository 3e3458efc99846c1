check --summary traces/stress-eager-kick.zst
