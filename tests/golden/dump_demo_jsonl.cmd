dump --format jsonl traces/demo.zst
