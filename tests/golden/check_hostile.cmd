check tests/golden/hostile.hvt
