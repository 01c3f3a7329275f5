# kagami: build, test, demo, bench, fuzz.
#   make            build/kagami (optimised, with debug info)
#   make test       unit + integration tests, all under ASan+UBSan
#   make demo       two example backends, kagami in front, traffic, findings
#   make bench      throughput against nginx (see bench/)
#   make fuzz       libFuzzer targets for a bounded time

CC      ?= cc
PKGS    := libuv lua5.4 jansson zlib sqlite3 libpcre2-8 libxml-2.0
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
CSTD    := -std=c11 -D_GNU_SOURCE
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lhttp_parser -lpthread -lm
CFLAGS  ?= -O2 -g
ALL_CFLAGS = $(CSTD) $(WARN) $(CFLAGS) $(PKG_CFLAGS) -Isrc
SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

SRCS    := $(sort $(wildcard src/*.c src/compare/*.c))
LIBSRCS := $(filter-out src/main.c,$(SRCS))
UNITSRC := $(sort $(wildcard tests/unit/test_*.c))
PYTEST  := /usr/bin/python3 -m pytest

.PHONY: all deps deps-test test unit integration check-asan demo bench fuzz clean

all: deps build/kagami

deps:
	@scripts/deps.sh build
deps-test:
	@scripts/deps.sh test

# --- release build -------------------------------------------------------
build/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

OBJS := $(SRCS:%.c=build/obj/%.o)
build/kagami: $(OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS)

# --- sanitizer build (what the tests run) --------------------------------
build/asan/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN) -O1 -MMD -MP -c $< -o $@

ASAN_OBJS    := $(SRCS:%.c=build/asan/%.o)
ASAN_LIBOBJS := $(LIBSRCS:%.c=build/asan/%.o)
build/asan/kagami: $(ASAN_OBJS)
	$(CC) $(SAN) -o $@ $^ $(PKG_LIBS)

build/asan/unit/%: tests/unit/%.c $(ASAN_LIBOBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN) -O1 -o $@ $< $(ASAN_LIBOBJS) $(PKG_LIBS) -lcmocka

UNITBINS := $(UNITSRC:tests/unit/%.c=build/asan/unit/%)

export ASAN_OPTIONS := detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS := print_stacktrace=1:halt_on_error=1

unit: deps-test $(UNITBINS)
	@set -e; for t in $(UNITBINS); do echo "== $$t"; $$t; done

integration: deps-test build/asan/kagami build/kagami
	KAGAMI_BIN=$(CURDIR)/build/asan/kagami $(PYTEST) -q tests/integration

test: unit integration

check-asan: test

demo: deps-test build/kagami
	@/usr/bin/python3 examples/demo.py

clean:
	rm -rf build

-include $(OBJS:.o=.d) $(ASAN_OBJS:.o=.d)
