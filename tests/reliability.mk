# reliability.mk -- included by the Makefile: the reliability suites.
#
#   make crash       the long crash tests: the SIGKILL loop (1,000 kills) and
#                    the power-loss simulator (100 images per sync mode);
#                    CI runs short versions (tests/crash.sh, powerloss.sh)
#   make crashtest   the SIGKILL loop alone, 1,000 kills
#   make fuzz        each libFuzzer harness in fuzz/ for FUZZ_TIME seconds
#   make asan        C tests and the busted suite under ASan + UBSan
#   make valgrind    the busted suite under valgrind's leak checker
#
# The out-of-memory test tests/test_oom.c (and test_lua_oom.c) link against
# a second build of the core with -DDF_FAULT_INJECTION ($(B)/fi/), so that
# any chosen allocation can be made to fail; the rules below replace the
# generic test rule for them.

FI_OBJ := $(patsubst src/%.c,$(B)/fi/%.o,$(CORE_SRC))
FI_LIB := $(B)/fi/libdynafile.a
LUA54_CFLAGS = $(shell pkg-config --cflags lua5.4 2>/dev/null)
LUA54_LIBS = $(shell pkg-config --libs lua5.4 2>/dev/null)

$(B)/fi/%.o: src/%.c src/*.h | $(B)
	@mkdir -p $(B)/fi
	$(CC) $(ALL_CFLAGS) -DDF_FAULT_INJECTION -c $< -o $@

$(FI_LIB): $(FI_OBJ)
	rm -f $@ && ar rcs $@ $^

$(B)/tests/test_oom: tests/test_oom.c $(FI_LIB) tests/*.h | $(B)
	$(CC) $(ALL_CFLAGS) -DDF_FAULT_INJECTION -Isrc $< $(FI_LIB) -o $@ $(LDLIBS)

# The Lua out-of-memory test embeds Lua 5.4 (a custom allocator needs
# lua_newstate, which LuaJIT's 64-bit build does not offer).
FI_BIND_OBJ := $(patsubst src/%.c,$(B)/fi/%-lua54.o,$(BIND_SRC))

$(FI_BIND_OBJ): $(B)/fi/%-lua54.o: src/%.c src/*.h | $(B)
	@mkdir -p $(B)/fi
	$(CC) $(ALL_CFLAGS) -DDF_FAULT_INJECTION $(LUA54_CFLAGS) -c $< -o $@

$(B)/tests/test_lua_oom: tests/test_lua_oom.c $(FI_BIND_OBJ) $(FI_LIB) \
                         tests/*.h | $(B)
	$(CC) $(ALL_CFLAGS) -DDF_FAULT_INJECTION $(LUA54_CFLAGS) -Isrc $< \
	  $(FI_BIND_OBJ) $(FI_LIB) -o $@ $(LDLIBS) $(LUA54_LIBS)

# ------------------------------------------------------------ crash loop
CRASH_KILLS ?= 1000

crashtest: deps
	@$(MAKE) --no-print-directory LUA=lua5.4 all
	CRASH_KILLS=$(CRASH_KILLS) bash tests/crash.sh

# ----------------------------------------------- power-loss simulator
# plsim.so records the writes of the processes it is preloaded into;
# plimage builds crash images from what it recorded (tests/powerloss/).
PL_B := build/powerloss
PL_CFLAGS := -std=c99 -D_GNU_SOURCE $(WARN) -O2 -g

$(PL_B)/plsim.so: tests/powerloss/plsim.c
	@mkdir -p $(PL_B)
	$(CC) $(PL_CFLAGS) -fPIC -shared $< -o $@ -ldl -lpthread

$(PL_B)/plimage: tests/powerloss/plimage.c
	@mkdir -p $(PL_B)
	$(CC) $(PL_CFLAGS) $< -o $@

$(PL_B)/plcut: tests/powerloss/plcut.c
	@mkdir -p $(PL_B)
	$(CC) $(PL_CFLAGS) $< -o $@ -lpthread

powerloss-build: $(PL_B)/plsim.so $(PL_B)/plimage $(PL_B)/plcut

POWERLOSS_IMAGES ?= 100

crash: deps
	@$(MAKE) --no-print-directory LUA=lua5.4 all powerloss-build
	CRASH_KILLS=$(CRASH_KILLS) bash tests/crash.sh
	POWERLOSS_IMAGES=$(POWERLOSS_IMAGES) bash tests/powerloss.sh

# --------------------------------------------------------------- fuzzing
FUZZ_CC ?= clang
FUZZ_TIME ?= 60
FUZZERS := msgpack key expr ddbexpr lcodec
FUZZ_SRC := src/codec.c src/decimal.c src/key.c src/alloc.c src/error.c src/expr.c \
            src/ddbexpr.c src/update.c src/regex.c src/itemjson.c
FUZZ_CFLAGS := -std=c99 -D_GNU_SOURCE -g -O1 $(WARN) \
               -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_BIN := $(patsubst %,build/fuzz/fuzz_%,$(FUZZERS))

build/fuzz/fuzz_%: fuzz/fuzz_%.c $(FUZZ_SRC) src/*.h
	@mkdir -p build/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Isrc $< $(FUZZ_SRC) -o $@ -lm

# The binding's codec runs in an embedded Lua 5.4, with the whole binding
# and core linked in (lcodec.c calls into both).
build/fuzz/fuzz_lcodec: fuzz/fuzz_lcodec.c $(BIND_SRC) $(CORE_SRC) src/*.h
	@mkdir -p build/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(LUA54_CFLAGS) -Isrc $< $(BIND_SRC) \
	  $(CORE_SRC) -o $@ $(LDLIBS) $(LUA54_LIBS)

fuzz-build: $(FUZZ_BIN)

fuzz: deps
	FUZZ_TIME=$(FUZZ_TIME) bash tests/fuzz.sh

# ------------------------------------------------------------ sanitizers
asan: deps
	bash tests/asan.sh

valgrind: deps
	bash tests/valgrind.sh

.PHONY: crash crashtest powerloss-build fuzz fuzz-build asan valgrind
