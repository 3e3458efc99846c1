check --max-findings 6 traces/stress-eager-kick.zst
