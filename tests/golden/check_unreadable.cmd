check traces/demo.zst tests/golden/check_unreadable.cmd
