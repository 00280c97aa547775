# libdia - build, test, install.
#   make                 build/lib/libdia.so + libdia.a + build/bin/dia
#   make test            install missing Debian build deps (as root), build, run every test
#   make test SANITIZE=1 the same under ASan + UBSan (in build-san/)
#   make CUDA=1          also build the CUDA backend (nvcc from /usr/local/cuda)
#   make test-cuda       GPU tests (skip cleanly without a device)

PREFIX ?= /usr/local
DESTDIR ?=
CUDA ?= 0
SANITIZE ?= 0
CUDA_HOME ?= /usr/local/cuda
NVCC ?= $(CUDA_HOME)/bin/nvcc

ABI := 0
VERSION := 0.1.0

ifeq ($(SANITIZE),1)
BUILD ?= build-san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else
BUILD ?= build
SANFLAGS :=
endif

CC ?= cc
OPT ?= -O2
# extra include/library dirs for machines without the -dev packages (see kernels/cuda/README)
DEPS_PREFIX ?=
, := ,
DEPS_CFLAGS := $(if $(DEPS_PREFIX),-I$(DEPS_PREFIX)/usr/include)
DEPS_LDFLAGS := $(if $(DEPS_PREFIX),-L$(DEPS_PREFIX)/usr/lib/x86_64-linux-gnu -Wl$(,)-rpath$(,)$(DEPS_PREFIX)/usr/lib/x86_64-linux-gnu)

CFLAGS_BASE := -std=c11 $(OPT) -g -Wall -Wextra -Werror -Wno-format-truncation -fPIC -fvisibility=hidden -fopenmp \
               -D_GNU_SOURCE -Iinclude -Ilib -I/usr/include/x86_64-linux-gnu/openblas-pthread $(DEPS_CFLAGS)
CFLAGS_ALL := $(CFLAGS_BASE) $(SANFLAGS) $(CFLAGS)
# libdia's own dependencies; the CLI adds libcurl and libcrypto (dia download: HTTP, sha256)
LIBS := -lopenblas -lcjson -lsndfile -lsamplerate -lgomp -lpthread -lm
CLI_LIBS := -lcurl -lcrypto
LDFLAGS_ALL := $(SANFLAGS) $(DEPS_LDFLAGS) $(LDFLAGS)

LIB_SRCS := $(wildcard lib/*.c) $(wildcard kernels/cpu/*.c)
ifeq ($(CUDA),1)
CU_SRCS := $(wildcard kernels/cuda/*.cu)
CU_OBJS := $(patsubst %.cu,$(BUILD)/obj/%.o,$(CU_SRCS))
LIBS += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublas -lcudart -lstdc++
CU_ARCH := -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90
NVCCFLAGS := -O3 -std=c++17 -Xcompiler -fPIC,-fvisibility=hidden -Iinclude -Ilib
# wgmma (Hopper's warpgroup MMA) exists only for the arch-specific target sm_90a; the decode-step
# kernel's setmaxnreg too (sm_90a code, plus the compute_90 PTX without it for other devices)
CU_ARCH_OF = $(if $(findstring wgmma,$(1)),-gencode arch=compute_90a$(,)code=sm_90a,$(if $(findstring decode_step,$(1)),-gencode arch=compute_90a$(,)code=sm_90a -gencode arch=compute_90$(,)code=compute_90,$(CU_ARCH)))
else
LIB_SRCS += kernels/nocuda/cuda_absent.c
CU_OBJS :=
endif
LIB_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRCS)) $(CU_OBJS)

CLI_SRCS := $(wildcard examples/cli_*.c)
TEST_SRCS := $(wildcard tests/test_*.c)
TEST_BINS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRCS))
BENCH_SRCS := $(wildcard bench/*.c)
BENCH_BINS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))

DEB_PKGS := build-essential pkg-config libopenblas-dev libcjson-dev libcmocka-dev libsndfile1-dev \
            libsamplerate0-dev libcurl4-openssl-dev libssl-dev python3 python3-pytest python3-numpy cargo bindgen

.PHONY: all lib test test-cuda deps clean install uninstall bench demo fuzz
all: lib $(BUILD)/bin/dia

lib: $(BUILD)/lib/libdia.so $(BUILD)/lib/libdia.a

$(BUILD)/obj/%.o: %.c $(wildcard include/*.h lib/*.h kernels/cpu/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/obj/%.o: %.cu $(wildcard include/*.h lib/*.h kernels/cuda/*.cuh)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) $(call CU_ARCH_OF,$<) -c $< -o $@

$(BUILD)/lib/libdia.so: $(LIB_OBJS) lib/libdia.map
	@mkdir -p $(dir $@)
	$(CC) -shared -o $(BUILD)/lib/libdia.so.$(ABI) -Wl,-soname,libdia.so.$(ABI) \
	    -Wl,--version-script=lib/libdia.map $(LIB_OBJS) $(LDFLAGS_ALL) $(LIBS)
	ln -sf libdia.so.$(ABI) $@

$(BUILD)/lib/libdia.a: $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $(LIB_OBJS)

$(BUILD)/bin/dia: $(CLI_SRCS) $(BUILD)/lib/libdia.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $(CLI_SRCS) $(BUILD)/lib/libdia.a $(LDFLAGS_ALL) $(LIBS) $(CLI_LIBS)

$(BUILD)/tests/%: tests/%.c $(wildcard tests/*.h) $(BUILD)/lib/libdia.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Wno-unused-parameter -o $@ $< $(BUILD)/lib/libdia.a $(LDFLAGS_ALL) $(LIBS) -lcmocka -lcjson

$(BUILD)/bench/%: bench/%.c bench/bench_util.h $(BUILD)/lib/libdia.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(BUILD)/lib/libdia.a $(LDFLAGS_ALL) $(LIBS)

bench: $(BENCH_BINS)

# libFuzzer targets (clang): make fuzz; then e.g. build-fuzz/fuzz_safetensors -max_total_time=60 CORPUS_DIR
# (seed fuzz_config / fuzz_dac_config with the fixtures' config.json files: random bytes are rarely JSON)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
fuzz:
	@mkdir -p build-fuzz
	for f in $(FUZZ_SRCS); do \
	  clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fopenmp -D_GNU_SOURCE -Iinclude -Ilib \
	    -I/usr/include/x86_64-linux-gnu/openblas-pthread -o build-fuzz/$$(basename $$f .c) $$f \
	    $(wildcard lib/*.c kernels/cpu/*.c) kernels/nocuda/cuda_absent.c $(LIBS) || exit 1; \
	done

demo: all
	@BUILD=$(BUILD) sh examples/demo.sh

# Install the Debian packages the build needs (as root), or print the command.
deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing:$$missing"; \
	    (apt-get install -y --no-install-recommends $$missing || (apt-get update && apt-get install -y --no-install-recommends $$missing)) || exit 1; \
	  else echo "missing build dependencies; run:"; echo "  sudo apt-get install -y$$missing"; exit 1; fi; \
	fi

test: deps
	$(MAKE) all $(TEST_BINS) $(BENCH_BINS)
	@BUILD=$(BUILD) sh tests/run_tests.sh $(TEST_BINS)
	@$(MAKE) --no-print-directory $(EXTRA_TESTS)

# (the library and the GPU test only: the CLI and audio code are not needed to test the backend)
test-cuda:
	$(MAKE) CUDA=1 BUILD=build-cuda all build-cuda/tests/test_cuda
	DIA_TEST_CUDA=1 CMOCKA_MESSAGE_OUTPUT=stdout ./build-cuda/tests/test_cuda

install: all
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/dia.h $(DESTDIR)$(PREFIX)/include/
	install -m 755 $(BUILD)/lib/libdia.so.$(ABI) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libdia.so.$(ABI) $(DESTDIR)$(PREFIX)/lib/libdia.so
	install -m 644 $(BUILD)/lib/libdia.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/bin/dia $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' -e 's|@LIBS_PRIVATE@|$(LIBS)|g' \
	    pkgconfig/dia.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/dia.pc

# removes exactly the files `make install` wrote (same PREFIX / DESTDIR)
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/dia.h $(DESTDIR)$(PREFIX)/lib/libdia.so.$(ABI) \
	      $(DESTDIR)$(PREFIX)/lib/libdia.so $(DESTDIR)$(PREFIX)/lib/libdia.a $(DESTDIR)$(PREFIX)/bin/dia \
	      $(DESTDIR)$(PREFIX)/lib/pkgconfig/dia.pc

clean:
	rm -rf build build-san build-cuda build-fuzz
include mk/packaging.mk
