stats --format json traces/hello.zst
