# hvtrace: a thin wrapper around CMake.  The two commands the README opens with:
#   make demo   install what is missing, build, record the demo guest on KVM (emu without
#               /dev/kvm), analyse it
#   make test   install what is missing, build normally and with ASan+UBSan, run every test,
#               then the plain suite again with /dev/kvm hidden (the emu backend only), then
#               a short run of every fuzz target (skipped, with a message, without clang)
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps build demo test test-build test-asan test-nokvm test-fuzz bench traces format clean

all: build

deps:
	@scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

demo: build
	@scripts/demo.sh $(BUILD)

test: test-build test-asan test-nokvm test-fuzz

# Two suites at a time: the machine has two cores, and the suites are independent.
test-build: build
	cd $(BUILD) && ctest -V -j2 --timeout 1200 2>&1 | $(CURDIR)/scripts/ctest-filter.sh

test-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DHVTRACE_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 ctest -V -j2 --timeout 2400 2>&1 | $(CURDIR)/scripts/ctest-filter.sh

test-nokvm: build
	scripts/test-nokvm.sh $(BUILD)

# FUZZ_SECONDS per target (default 60); see fuzz/README.md.
test-fuzz:
	@scripts/deps.sh --fuzz
	scripts/fuzz.sh $(FUZZ_BUILD)

bench: build
	@cmake --build $(BUILD) --target bench

traces: build
	scripts/record-traces.sh $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
