stats tests/golden/hostile.hvt
