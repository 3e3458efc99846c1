stats traces/demo.zst
