check traces/movss-sti-l64-eager-step.zst traces/sti-hlt-p32-eager-step.zst traces/modeswitch-eager-step.zst
