diff traces/demo.zst traces/hello.zst
