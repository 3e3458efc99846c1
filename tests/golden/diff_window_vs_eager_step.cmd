diff --all --context 1 --ignore-reason +debug traces/movss-sti-window.zst traces/movss-sti-eager-step.zst
