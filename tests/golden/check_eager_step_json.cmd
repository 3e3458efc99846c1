check --json traces/movss-sti-eager-step.zst
