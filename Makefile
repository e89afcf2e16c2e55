# seek - build, test, benchmark.
#
#   make          build ./seek (release, -O2)
#   make test     install test dependencies, build, run every test; ends with "N passed, N failed"
#                 (tests/tool_*.c are helper programs the Python tests drive, not tests)
#   make asan     build with AddressSanitizer + UBSan and run the GGUF fuzzer and unit tests
#   make bench    build and run bench/ (kernel GB/s, end-to-end pp/tg)
#   make demo     install dependencies, build, make a small model and run it
#
# ISA-specific kernels live in files named *_avx2.c / *_avx512.c and are compiled with their own
# -m flags; everything else is plain x86-64 (or arm64) code, so one binary runs on any CPU of the
# architecture and picks kernels at run time.  *_neon.c files are compiled for arm64 targets only
# (baseline ARMv8-A NEON, no extra flags).
#
#   make CC=aarch64-linux-gnu-gcc BUILD=dir LDFLAGS=-static kern-tests
#                 cross-build just the kernel tests (src/base, src/gguf, src/kern need only libc
#                 and libm); tests/neon.sh does this and runs them under qemu-aarch64

CC       ?= cc
BUILD    ?= build
OPT      ?= -O2
CFLAGS   ?=
CFLAGS_ALL = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Wshadow -g $(OPT) -pthread $(CFLAGS)
LDLIBS   = -lmicrohttpd -lcurl -lpcre2-8 -ljansson -ledit -lcrypto -lm -pthread
LDFLAGS  ?=
# The target architecture (x86_64, aarch64, ...) as the compiler sees it, so that a cross compiler
# selects the target's kernel files.
ARCH    := $(firstword $(subst -, ,$(shell $(CC) -dumpmachine)))

FLAGS_avx2   = -mavx2 -mfma -mf16c -mbmi2
FLAGS_avx512 = -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx2 -mfma -mf16c -mbmi2

LIB_SRC := $(sort $(wildcard src/base/*.c src/gguf/*.c src/kern/*.c src/model/*.c src/tok/*.c src/chat/*.c src/server/*.c \
                             src/sample/*.c src/engine/*.c src/store/*.c))
ifneq ($(ARCH),x86_64)
LIB_SRC := $(filter-out %_avx2.c %_avx512.c,$(LIB_SRC))
endif
ifneq ($(ARCH),aarch64)
LIB_SRC := $(filter-out %_neon.c,$(LIB_SRC))
endif
CLI_SRC := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c tests/fuzz_*.c tests/tool_*.c))
BENCH_SRC := $(sort $(wildcard bench/*.c))

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
KERN_OBJ := $(filter $(BUILD)/src/base/% $(BUILD)/src/gguf/% $(BUILD)/src/kern/%,$(LIB_OBJ))
KERN_TESTS = test_kern test_actq test_quants test_attn
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

isa_flags = $(if $(findstring _avx512.c,$1),$(FLAGS_avx512),$(if $(findstring _avx2.c,$1),$(FLAGS_avx2),))

.PHONY: all test asan bench demo clean deps test-deps kern-tests
all: seek

seek: $(BUILD)/seek
	@ln -sf $(BUILD)/seek seek

$(BUILD)/%.o: %.c $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(call isa_flags,$<) -c $< -o $@

$(BUILD)/libseek.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/seek: $(CLI_OBJ) $(BUILD)/libseek.a
	$(CC) $(CFLAGS_ALL) -o $@ $(CLI_OBJ) $(BUILD)/libseek.a $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(BUILD)/libseek.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Isrc -o $@ $< $(BUILD)/libseek.a $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(BUILD)/libseek.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Isrc -o $@ $< $(BUILD)/libseek.a $(LDLIBS)

tests: $(TEST_BIN)

# The kernel tests linked against the kernel layers alone (no microhttpd, curl, pcre2, ...).
$(BUILD)/libseek-kern.a: $(KERN_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/kern-tests/%: tests/%.c $(BUILD)/libseek-kern.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Isrc -o $@ $< $(BUILD)/libseek-kern.a $(LDFLAGS) -lm -pthread

kern-tests: $(KERN_TESTS:%=$(BUILD)/kern-tests/%)

deps:
	@scripts/install-deps.sh build

test-deps:
	@scripts/install-deps.sh test

test: test-deps
	@$(MAKE) --no-print-directory seek tests
	@tests/run.sh

ASAN_TESTS = test_gguf test_kern test_actq test_attn test_tok test_jinja test_reason test_sample test_store test_engine test_fit
asan:
	@$(MAKE) --no-print-directory BUILD=build-asan OPT="-O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" build-asan/seek build-asan/tests/fuzz_gguf $(ASAN_TESTS:%=build-asan/tests/%)
	@for t in $(ASAN_TESTS); do \
	    ASAN_OPTIONS=detect_leaks=1 build-asan/tests/$$t >build-asan/$$t.log 2>&1 || { cat build-asan/$$t.log; exit 1; }; \
	    tail -n 1 build-asan/$$t.log; done
	ASAN_OPTIONS=detect_leaks=1 build-asan/tests/fuzz_gguf 600

bench: seek $(BENCH_BIN)
	@bench/run.sh

demo:
	@scripts/install-deps.sh demo
	@$(MAKE) --no-print-directory seek
	@scripts/demo.sh

clean:
	rm -rf build build-asan build-neon-cross seek
