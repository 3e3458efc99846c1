check traces/demo.zst traces/movss-sti-window.zst
