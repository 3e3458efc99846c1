dump tests/golden/hostile.hvt
