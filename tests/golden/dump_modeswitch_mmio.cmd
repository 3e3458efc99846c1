dump traces/modeswitch-eager-step.zst | grep -E ' mmio '
