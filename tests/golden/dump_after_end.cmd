dump tests/golden/after-end.hvt
