diff traces/demo.zst traces/demo.zst
