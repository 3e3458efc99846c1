dump traces/hello.zst
