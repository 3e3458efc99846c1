# hvtrace: a thin wrapper around CMake.  The two commands the README opens with:
#   make demo   install what is missing, build, record the demo guest on KVM (emu without
#               /dev/kvm), analyse it
#   make test   install what is missing, build normally and with ASan+UBSan, run every test,
#               then the suites labelled kvm again with /dev/kvm hidden (emu only), then
#               a short run of every fuzz target (skipped, with a message, without clang)
# Only those two install (scripts/deps.sh: apt-get, on Debian).  Every other target, `make`
# and `make build` included, builds with what is there and never runs apt-get or dpkg, so it
# works off Debian and offline; a missing dependency is named by CMake.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps deps-fuzz build demo test test-build test-asan test-nokvm test-fuzz bench bench-fake \
	traces format clean

all: build

deps:
	@scripts/deps.sh

# After deps: two apt-get runs at once (make -j) would fight over dpkg's lock.
deps-fuzz: deps
	@scripts/deps.sh --fuzz

# The install steps run first when `demo` or `test` is among the goals, and only then.
# For `test` the packages only tests use (GNU parallel, Slurm, protoc, ...) come before
# the first configure: installed only for the fuzz run, they left the campaign suites
# of both passes skipped on a fresh machine.
ifneq ($(filter demo test,$(MAKECMDGOALS)),)
build test-asan: | deps
endif
ifneq ($(filter test,$(MAKECMDGOALS)),)
build test-asan test-fuzz: | deps-fuzz
endif

CONFIGURE_HINT = echo "make: CMake could not configure $(1); if a dependency is missing, \
make demo or make test installs it on Debian (scripts/deps.sh lists the packages)" >&2; exit 1

build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || \
		{ $(call CONFIGURE_HINT,$(BUILD)); }
	@cmake --build $(BUILD) -j $(JOBS)

demo: build
	@scripts/demo.sh $(BUILD)

test: test-build test-asan test-nokvm test-fuzz

# Two suites at a time: the machine has two cores, and the suites are independent.
test-build: build
	cd $(BUILD) && ctest -V -j2 --timeout 1200 2>&1 | $(CURDIR)/scripts/ctest-filter.sh

test-asan:
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DHVTRACE_SANITIZE=ON >/dev/null || \
		{ $(call CONFIGURE_HINT,$(ASAN_BUILD)); }
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 ctest -V -j2 --timeout 2400 2>&1 | $(CURDIR)/scripts/ctest-filter.sh

test-nokvm: build
	scripts/test-nokvm.sh $(BUILD)

# FUZZ_SECONDS per target (default 60); see fuzz/README.md.
test-fuzz:
	scripts/fuzz.sh $(FUZZ_BUILD)

bench: build
	@cmake --build $(BUILD) --target bench

bench-fake: build
	@cmake --build $(BUILD) --target bench-fake

traces: build
	scripts/record-traces.sh $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
