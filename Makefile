# dynafile -- build, test, install.
#
#   make            build the C core and the Lua module for $(LUA)
#   make shell      a $(LUA) prompt with this checkout's dynafile loaded
#   make run SCRIPT=file.lua [ARGS="..."]   run a script with this checkout's
#                   dynafile (`eval "$$(make -s env)"` sets the same paths in
#                   the current shell)
#   make demo       install what is missing, build, run examples/quickstart.lua
#   make test       install what is missing, build, run every test
#   make js-deps    install the pinned JavaScript test clients (tests/js)
#   make bench-serve  dynafile serve against dynalite (wrk; bench/serve.sh)
#   make tsan       build the core and tests/test_threads.c with
#                   ThreadSanitizer (TSAN_CC=gcc or clang) and run it
#   make install    PREFIX, DESTDIR, LUA_CMOD, LUA_LMOD honoured
#   make docs       the Lua API reference from LDoc comments, in build/docs
#                   (installs lua-ldoc on demand)
#   make crashtest, fuzz, asan, valgrind   reliability suites
#                   (tests/reliability.mk)
#   make lint       layering (scripts/depgraph.lua), cppcheck, clang-format,
#                   luacheck
#
# LUA selects the interpreter the module is built for: lua5.4 (default),
# lua5.3, lua5.1 or luajit, or its path (luarocks passes /usr/bin/lua5.4);
# LUA_CFLAGS, when given, replaces what pkg-config says of its headers.
# The rockspec builds with this Makefile (luarocks make).

LUA ?= lua5.4
PREFIX ?= /usr/local
DESTDIR ?=

LUA_NAME := $(notdir $(LUA))
ifeq ($(LUA_NAME),luajit)
  LUA_PC := luajit
  LUA_VER := 5.1
  LUA_BIN := luajit
else
  LUA_VER := $(patsubst lua%,%,$(LUA_NAME))
  LUA_PC := lua$(LUA_VER)
  LUA_BIN := lua$(LUA_VER)
endif

LUA_CMOD ?= $(PREFIX)/lib/lua/$(LUA_VER)
LUA_LMOD ?= $(PREFIX)/share/lua/$(LUA_VER)
BINDIR ?= $(PREFIX)/bin

CC ?= cc
OPT ?= -O2
# Warnings are errors here; the rockspec turns that off (WERROR=) so a
# newer compiler's new warning does not stop a user's build.
WERROR ?= -Werror
WARN := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
        -Wmissing-prototypes -Wpointer-arith -Wcast-align -Wformat=2 \
        -Wundef $(WERROR)
CFLAGS ?= $(OPT) -g
ALL_CFLAGS := -std=c99 -D_GNU_SOURCE -fPIC $(WARN) $(CFLAGS) $(EXTRA_CFLAGS)
LDLIBS := -llmdb -lpthread -lm

B := build/$(LUA_NAME)
# The Lua binding (module dynafile.core; see src/lbinding.h) is every
# file listed here; every other src/*.c is the C core (libdynafile.a).
BIND_SRC := src/lerror.c src/lcodec.c src/lexpr.c src/ldb.c src/ltxn.c \
            src/lview.c src/lquery.c src/lopen.c src/ldynafile.c
BIND_OBJ := $(patsubst src/%.c,$(B)/%.o,$(BIND_SRC))
CORE_SRC := $(filter-out $(BIND_SRC),$(wildcard src/*.c))
CORE_OBJ := $(patsubst src/%.c,$(B)/%.o,$(CORE_SRC))
LUA_CFLAGS = $(shell pkg-config --cflags $(LUA_PC) 2>/dev/null)
LUA_LIBS = $(shell pkg-config --libs $(LUA_PC) 2>/dev/null)

MODULE := $(B)/dynafile/core.so
LIB := $(B)/libdynafile.a

# SHA-256 and HMAC-SHA256 for the DynamoDB backend's request signing
# (module dynafile.remote.crypto, src/remote/crypto.c): built when
# libcrypto 3's headers are installed; without it the signer uses luaossl.
CRYPTO_MODULE := $(B)/dynafile/remote/crypto.so
HAVE_CRYPTO := $(shell pkg-config --atleast-version=3.0 libcrypto 2>/dev/null && echo yes)
CRYPTO_CFLAGS = $(shell pkg-config --cflags libcrypto 2>/dev/null)
CRYPTO_LIBS = $(shell pkg-config --libs libcrypto 2>/dev/null)

C_TESTS := $(patsubst tests/%.c,$(B)/tests/%,$(wildcard tests/test_*.c))
C_EXAMPLES := $(patsubst examples/%.c,$(B)/examples/%,$(wildcard examples/*.c))

.PHONY: all deps js-deps bench-serve demo test test-c test-lua bench bench-remote install \
        uninstall clean docs format lint tsan env shell run

# The Lua paths under which `require "dynafile"` loads this checkout's
# build (make env prints them; make shell and make run use them).
RUN_LUA_PATH = $(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;;
RUN_LUA_CPATH = $(CURDIR)/$(B)/?.so;;

all: $(MODULE) $(LIB) $(if $(HAVE_CRYPTO),$(CRYPTO_MODULE))
	@if [ "$(MAKELEVEL)" = 0 ] && [ -z "$(filter shell run demo,$(MAKECMDGOALS))" ]; then \
	  echo "built $(MODULE); use it from here: make shell, make run SCRIPT=file.lua," \
	       "or eval \"\$$(make -s env)\" in your shell"; \
	fi

env:
	@echo 'export LUA_PATH="$(RUN_LUA_PATH)" LUA_CPATH="$(RUN_LUA_CPATH)"'

shell: all
	@LUA_PATH="$(RUN_LUA_PATH)" LUA_CPATH="$(RUN_LUA_CPATH)" $(LUA_BIN) -i -e \
	  'dynafile = require "dynafile" print("dynafile " .. dynafile.version .. " loaded as dynafile")'

run: all
	@if [ -z "$(SCRIPT)" ]; then echo "usage: make run SCRIPT=file.lua [ARGS=...]" >&2; exit 2; fi
	@LUA_PATH="$(RUN_LUA_PATH)" LUA_CPATH="$(RUN_LUA_CPATH)" $(LUA_BIN) $(SCRIPT) $(ARGS)

$(B)/%.o: src/%.c src/*.h | $(B)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BIND_OBJ): $(B)/%.o: src/%.c src/*.h | $(B)
	$(CC) $(ALL_CFLAGS) $(LUA_CFLAGS) -c $< -o $@

$(LIB): $(CORE_OBJ)
	rm -f $@ && ar rcs $@ $^

$(MODULE): $(BIND_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $(BIND_OBJ) $(LIB) $(LDFLAGS) $(LDLIBS)

$(CRYPTO_MODULE): src/remote/crypto.c | $(B)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LUA_CFLAGS) $(CRYPTO_CFLAGS) -shared -o $@ $< \
	  $(LDFLAGS) $(CRYPTO_LIBS)

$(B):
	@mkdir -p $(B)/tests $(B)/examples

$(B)/tests/%: tests/%.c $(LIB) tests/*.h | $(B)
	$(CC) $(ALL_CFLAGS) -Isrc $< $(LIB) -o $@ $(LDLIBS)

# test_fork also checks what Lua sees in a forked child: it embeds Lua and
# links the binding in.
$(B)/tests/test_fork: tests/test_fork.c $(BIND_OBJ) $(LIB) tests/*.h | $(B)
	$(CC) $(ALL_CFLAGS) $(LUA_CFLAGS) -Isrc $< $(BIND_OBJ) $(LIB) -o $@ \
	  $(LDLIBS) $(LUA_LIBS)

$(B)/examples/%: examples/%.c $(LIB) | $(B)
	$(CC) $(ALL_CFLAGS) -Isrc $< $(LIB) -o $@ $(LDLIBS)

deps:
	@sh scripts/install-deps.sh

# npm ci in tests/js when needed (the AWS SDK for JavaScript v3, dynalite)
js-deps: deps
	@sh scripts/js-deps.sh

demo:
	@sh scripts/install-deps.sh --build
	@$(MAKE) --no-print-directory all
	LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="$(B)/?.so;;" \
	  $(LUA_BIN) examples/quickstart.lua

# run-tests.sh builds every Lua version itself (make LUA=... all, test-c) and
# counts a build failure as a test failure, so the other suites still run.
# A failed npm ci does not stop the run: the JavaScript suites then fail.
test: deps
	@sh scripts/js-deps.sh || echo "make test: npm ci failed in tests/js"
	@MAKE="$(MAKE)" sh scripts/run-tests.sh

test-c: $(C_TESTS) $(C_EXAMPLES)

# ThreadSanitizer: every core source and the thread test in one build,
# run once; any report fails the target.
TSAN_CC ?= $(CC)
tsan:
	@mkdir -p build/tsan
	$(TSAN_CC) -std=c99 -D_GNU_SOURCE $(WARN) -O1 -g -fsanitize=thread \
	  -Isrc $(CORE_SRC) tests/test_threads.c -o build/tsan/test_threads \
	  $(LDLIBS)
	TSAN_OPTIONS="halt_on_error=1 exitcode=66" build/tsan/test_threads

bench: deps
	@sh scripts/install-deps.sh --bench
	@$(MAKE) --no-print-directory all
	LUA_PATH="lua/?.lua;lua/?/init.lua;bench/?.lua;;" LUA_CPATH="$(B)/?.so;;" \
	  $(LUA_BIN) bench/bench.lua

# The DynamoDB backend's benchmark: bench/core.lua's workloads on a local
# database and through the backend against dynalite (tests/js), with the
# client's CPU per request beyond the bare HTTP exchange.
bench-remote: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory LUA=luajit all
	@sh scripts/js-deps.sh
	LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="$(B)/?.so;;" \
	  $(LUA_BIN) bench/remote/run.lua

# dynafile serve against dynalite, with wrk (bench/serve.sh)
bench-serve: js-deps
	@$(MAKE) --no-print-directory LUA=luajit all
	@$(MAKE) --no-print-directory LUA=lua5.4 all
	@bash bench/serve.sh

install: all
	install -d $(DESTDIR)$(LUA_CMOD)/dynafile
	install -m 0755 $(MODULE) $(DESTDIR)$(LUA_CMOD)/dynafile/core.so
	@if [ -f $(CRYPTO_MODULE) ]; then \
	  install -d $(DESTDIR)$(LUA_CMOD)/dynafile/remote && \
	  install -m 0755 $(CRYPTO_MODULE) $(DESTDIR)$(LUA_CMOD)/dynafile/remote/crypto.so; \
	fi
	cd lua && find dynafile -name '*.lua' | sort | while read -r f; do \
	  install -d "$(DESTDIR)$(LUA_LMOD)/$$(dirname "$$f")" && \
	  install -m 0644 "$$f" "$(DESTDIR)$(LUA_LMOD)/$$f" || exit 1; \
	done
	@if [ -f bin/dynafile ]; then \
	  echo "install bin/dynafile -> $(DESTDIR)$(BINDIR)/dynafile ($(LUA_BIN))"; \
	  install -d $(DESTDIR)$(BINDIR) && \
	  sed '1s|^#!.*|#!/usr/bin/env $(LUA_BIN)|' bin/dynafile \
	    > $(DESTDIR)$(BINDIR)/dynafile && \
	  chmod 0755 $(DESTDIR)$(BINDIR)/dynafile; \
	fi

uninstall:
	rm -rf $(DESTDIR)$(LUA_CMOD)/dynafile $(DESTDIR)$(LUA_LMOD)/dynafile
	rm -f $(DESTDIR)$(BINDIR)/dynafile

clean:
	rm -rf build

# config.ld lists the public modules; any LDoc warning fails the target.
# Debian's ldoc runs on Lua 5.2 or 5.1 and lua-markdown is installed for
# 5.1 only, hence lua5.1.
LDOC ?= lua5.1 /usr/bin/ldoc
docs:
	@sh scripts/install-deps.sh --docs
	rm -rf build/docs
	$(LDOC) --fatalwarnings .
	@echo "API reference: build/docs/index.html"

format:
	clang-format -i $(FORMAT_FILES)

# make lint: the C layering (scripts/depgraph.lua: no dependency cycle,
# LMDB called from at most five files, lmdb.h only where LMDB is called),
# cppcheck, clang-format and luacheck; any finding fails it.  make test
# runs it.
# cppcheck's suppression: ddbexpr.c points its output at a local buffer
# during one call and restores it before returning.
FORMAT_FILES = $(wildcard src/*.c src/*.h src/remote/*.c \
                 tests/*.c tests/*.h fuzz/*.c examples/*.c)
CPPCHECK_FLAGS := --quiet --enable=warning,performance,portability --std=c99 \
  -D_GNU_SOURCE -DREG_STARTEND=4 --inline-suppr --error-exitcode=1 \
  --suppress=autoVariables:src/ddbexpr.c \
  --template='{file}:{line}: {severity}: {message} [{id}]'

lint:
	@mkdir -p build
	@lua5.4 scripts/depgraph.lua >build/depgraph.txt || \
	  { cat build/depgraph.txt; exit 1; }
	@echo "depgraph: the layering holds (the graph: build/depgraph.txt)"
	cppcheck $(CPPCHECK_FLAGS) -Isrc -Itests src/*.c src/remote/*.c tests/*.c fuzz/*.c
	clang-format --dry-run --Werror $(FORMAT_FILES)
	luacheck -q lua spec bench examples

include tests/reliability.mk
