diff --json --ignore-reason +debug traces/movss-sti-window.zst traces/movss-sti-eager-step.zst
