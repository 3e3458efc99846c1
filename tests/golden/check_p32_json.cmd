check --json traces/sti-hlt-p32-eager-step.zst
