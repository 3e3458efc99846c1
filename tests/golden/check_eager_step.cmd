check traces/movss-sti-eager-step.zst traces/sti-if-set-eager-step.zst
