# mk/packaging.mk - packaging, ABI, example and binding targets (included at the end of the Makefile).
#
#   make test-packaging   ABI checks (tests/test_abi.sh) + install into temporary prefixes and build
#                         examples/simple.c against them with pkg-config (tests/test_install.sh)
#   make test-examples    build examples/{simple,batch,stream,voice_clone}.c and run them on the tiny fixtures
#   make test-python      pytest bindings/python/tests against $(BUILD)/lib/libdia.so (DIA_LIBRARY)
#   make test-rust        cargo test --offline in bindings/rust against $(BUILD)/lib
#   make bindgen          regenerate bindings/rust/dia-sys/src/bindings.rs with Debian's bindgen
#   make check-bindgen    fail if the checked-in bindings differ from what bindgen makes now
#   make test-extra       all of $(EXTRA_TESTS)
#
# Debian packages these need: python3 python3-pytest python3-numpy cargo bindgen (bindgen only for
# the `bindgen`/`check-bindgen` targets; check-bindgen skips with a message without it).

# Debian's python3 has python3-pytest/python3-numpy; a pyenv python3 on PATH usually has neither.
PYTHON ?= $(firstword $(wildcard /usr/bin/python3) python3)
CARGO ?= cargo
BINDGEN ?= bindgen
EXAMPLES := simple batch stream voice_clone
EXAMPLE_BINS := $(patsubst %,$(BUILD)/examples/%,$(EXAMPLES))
EXTRA_TESTS := test-packaging test-examples test-python test-rust

# A libdia built with SANITIZE=1 links the ASan runtime, which must be loaded first into programs
# that are not themselves instrumented (python, cargo test binaries, the installed examples).
ifeq ($(SANITIZE),1)
DIA_PRELOAD := LD_PRELOAD=$(shell $(CC) -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0
# cargo and rustc must not run under the preload: only the test binaries (through a runner)
# (RUST_BACKTRACE=0: a panicking test's backtrace under the preloaded ASan runtime hangs at exit in
# p11-kit's destructor, from libcurl's TLS stack)
RUST_PRELOAD := CARGO_TARGET_$(shell uname -m | tr a-z A-Z)_UNKNOWN_LINUX_GNU_RUNNER="env RUST_BACKTRACE=0 $(DIA_PRELOAD)"
else
DIA_PRELOAD :=
RUST_PRELOAD :=
endif

BINDGEN_FLAGS := --no-layout-tests --size_t-is-usize --no-prepend-enum-name \
                 --allowlist-function 'dia_.*' --allowlist-type 'dia_.*' --allowlist-var 'DIA_.*' \
                 --raw-line '// Generated from include/dia.h by `make bindgen` (Debian bindgen); do not edit.'
RUST_BINDINGS := bindings/rust/dia-sys/src/bindings.rs

.PHONY: examples test-packaging test-abi test-install test-examples test-python test-rust bindgen \
        check-bindgen test-extra

examples: $(EXAMPLE_BINS)

# The examples use only <dia.h>; linked against the build tree's shared library (rpath set).
$(BUILD)/examples/%: examples/%.c include/dia.h $(BUILD)/lib/libdia.so
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -Wall -Wextra -Werror -Iinclude $(SANFLAGS) -o $@ $< -L$(BUILD)/lib \
	    -Wl,-rpath,$(abspath $(BUILD)/lib) -ldia

test-packaging: test-abi test-install

test-abi: $(BUILD)/lib/libdia.so
	DIA_PRELOAD="$(DIA_PRELOAD)" sh tests/test_abi.sh $(BUILD)/lib/libdia.so

test-install: all
	MAKE="$(MAKE)" BUILD=$(BUILD) VERSION=$(VERSION) ABI=$(ABI) DIA_PRELOAD="$(DIA_PRELOAD)" \
	    DIA_LDFLAGS="$(SANFLAGS)" PYTHON=$(PYTHON) CARGO=$(CARGO) \
	    sh tests/test_install.sh

test-examples: $(EXAMPLE_BINS)
	BUILD=$(BUILD) sh tests/test_examples.sh

test-python: $(BUILD)/lib/libdia.so
	@$(PYTHON) -c 'import pytest' 2>/dev/null || { echo "test-python: $(PYTHON) has no pytest (apt-get install python3-pytest)"; exit 1; }
	cd bindings/python && $(DIA_PRELOAD) DIA_LIBRARY=$(abspath $(BUILD)/lib/libdia.so) \
	    DIA_FIXTURES=$(abspath tests/fixtures/tiny) $(PYTHON) -m pytest -q -p no:cacheprovider tests

test-rust: $(BUILD)/lib/libdia.so check-bindgen
	@command -v $(CARGO) >/dev/null || { echo "test-rust: $(CARGO) not found (apt-get install cargo)"; exit 1; }
	cd bindings/rust && $(RUST_PRELOAD) DIA_LIB_DIR=$(abspath $(BUILD)/lib) \
	    LD_LIBRARY_PATH=$(abspath $(BUILD)/lib)$${LD_LIBRARY_PATH:+:$$LD_LIBRARY_PATH} \
	    DIA_FIXTURES=$(abspath tests/fixtures/tiny) CARGO_TARGET_DIR=$(abspath $(BUILD)/rust) \
	    MAKEFLAGS= $(CARGO) test --offline --workspace

bindgen:
	@command -v $(BINDGEN) >/dev/null || { echo "bindgen: $(BINDGEN) not found (apt-get install bindgen)"; exit 1; }
	$(BINDGEN) $(BINDGEN_FLAGS) include/dia.h -o $(RUST_BINDINGS)

check-bindgen:
	@mkdir -p $(BUILD)
	@if command -v $(BINDGEN) >/dev/null; then \
	  $(BINDGEN) $(BINDGEN_FLAGS) include/dia.h -o $(BUILD)/bindings.rs.new && \
	  if cmp -s $(BUILD)/bindings.rs.new $(RUST_BINDINGS); then echo "ok   - $(RUST_BINDINGS) is up to date"; \
	  else diff -u $(RUST_BINDINGS) $(BUILD)/bindings.rs.new | head -40; \
	    echo "FAIL - $(RUST_BINDINGS) is stale: run 'make bindgen' and commit it"; exit 1; fi; \
	else echo "SKIP - check-bindgen: $(BINDGEN) not installed"; fi

test-extra: $(EXTRA_TESTS)
