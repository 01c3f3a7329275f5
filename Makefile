# kagami: build, test, demo, bench, fuzz.
#   make            build/kagami (optimised, with debug info)
#   make test       unit, integration, fuzz corpus, browser tests (ASan+UBSan)
#   make demo       two example backends, kagami in front, traffic, findings
#   make bench      throughput against nginx (see bench/)
#   make fuzz       libFuzzer targets for a bounded time
#   make install    binary, man pages, systemd unit, logrotate, example config
#                   (PREFIX=/usr/local, DESTDIR=; `make uninstall` undoes it)
#   make deb        a Debian package in build/ (`make deb-test` installs it)

CC      ?= cc
PKGS    := libuv lua5.4 jansson zlib sqlite3 libpcre2-8 libxml-2.0 openssl libpq
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
CSTD    := -std=c11 -D_GNU_SOURCE
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lhttp_parser -lpthread -lm
CFLAGS  ?= -O2 -g
ALL_CFLAGS = $(CSTD) $(WARN) $(CFLAGS) $(PKG_CFLAGS) -Isrc
SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

SRCS    := $(sort $(wildcard src/*/*.c))
LIBSRCS := $(filter-out src/cli/main.c,$(SRCS))
UNITSRC := $(sort $(wildcard tests/unit/*/test_*.c))
# Sources generated into build/gen/ (rules below); every build compiles
# them like the library sources.
GEN_SRCS := build/gen/web_assets.c build/gen/hooks_lua.c
PYTEST  := /usr/bin/python3 -m pytest

.PHONY: all deps deps-test deps-demo test unit integration check-asan demo bench fuzz fuzz-replay clean

all: deps build/kagami

deps:
	@scripts/deps.sh build
deps-test:
	@scripts/deps.sh test
deps-demo:
	@scripts/deps.sh demo

# --- release build -------------------------------------------------------
# Every compile waits for the packages (order-only: installing them again
# rebuilds nothing), so `make -j2` on a fresh machine does not race
# apt-get against the compiler. deps is phony, so it runs once per make.
build/obj/%.o: %.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

OBJS := $(SRCS:%.c=build/obj/%.o) $(GEN_SRCS:build/gen/%.c=build/obj/gen/%.o)
build/kagami: $(OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS)

# --- sanitizer build (what the tests run) --------------------------------
build/asan/%.o: %.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN) -O1 -MMD -MP -c $< -o $@

ASAN_GENOBJS := $(GEN_SRCS:build/gen/%.c=build/asan/gen/%.o)
ASAN_OBJS    := $(SRCS:%.c=build/asan/%.o) $(ASAN_GENOBJS)
ASAN_LIBOBJS := $(LIBSRCS:%.c=build/asan/%.o) $(ASAN_GENOBJS)
build/asan/kagami: $(ASAN_OBJS)
	$(CC) $(SAN) -o $@ $^ $(PKG_LIBS)

build/asan/unit/%: tests/unit/%.c $(ASAN_LIBOBJS) | deps-test
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN) -O1 -o $@ $< $(ASAN_LIBOBJS) $(PKG_LIBS) -lcmocka

UNITBINS := $(UNITSRC:tests/unit/%.c=build/asan/unit/%)

# --- generated sources: files embedded into the binaries -------------------
# The dashboard (web/) by scripts/embed_web.py, for admin.c; the Lua chunks
# kept as .lua files (src/proxy/*.lua) by scripts/embed_lua.py, for
# hooks.c. Their objects are in OBJS, ASAN_OBJS and FUZZ_OBJS with the
# rest, so the release, ASan, unit, fuzz and bench builds all link them.
WEB_FILES := $(sort $(wildcard web/*.html web/*.js web/*.css web/*.svg))
build/gen/web_assets.c: $(WEB_FILES) scripts/embed_web.py
	@mkdir -p $(dir $@)
	/usr/bin/python3 scripts/embed_web.py -o $@ $(WEB_FILES)
LUA_CHUNKS := kg_hooks_headers_lua=src/proxy/hooks_headers.lua
build/gen/hooks_lua.c: $(foreach c,$(LUA_CHUNKS),$(lastword $(subst =, ,$(c)))) \
                       scripts/embed_lua.py scripts/embed_web.py
	@mkdir -p $(dir $@)
	/usr/bin/python3 scripts/embed_lua.py -o $@ --include proxy/hooks_lua.h $(LUA_CHUNKS)
build/obj/gen/%.o: build/gen/%.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@
build/asan/gen/%.o: build/gen/%.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN) -O1 -MMD -MP -c $< -o $@

# --- the dashboard in Debian's headless Chromium (tests/browser) ----------
# `browser-test` installs Chromium (and node/npm if absent) and the pinned
# playwright-core; `browser-test-if-chromium` runs it only where Chromium
# is installed, for `make test`. Screenshots land in build/dashboard-*.png.
.PHONY: browser-test browser-test-if-chromium
browser-test: build/asan/kagami
	@scripts/deps.sh browser
	cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
	cd tests/browser && KAGAMI_BIN=$(CURDIR)/build/asan/kagami npm test --silent
browser-test-if-chromium:
	@if [ -x /usr/bin/chromium ]; then $(MAKE) --no-print-directory browser-test; \
	else echo "browser-test: skipped, no /usr/bin/chromium (scripts/deps.sh browser installs it)"; fi

export ASAN_OPTIONS := detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS := print_stacktrace=1:halt_on_error=1

unit: deps-test $(UNITBINS)
	@set -e; for t in $(UNITBINS); do echo "== $$t"; $$t; done

integration: deps-test build/asan/kagami build/kagami
	KAGAMI_BIN=$(CURDIR)/build/asan/kagami $(PYTEST) -q tests/integration

# Everything a change must pass: the layering and man page checks, then,
# under ASan+UBSan, unit tests, the black-box suite, the fuzz corpora
# replayed, and the dashboard in a real browser when Chromium is installed
# (.ci/run installs it).
test: layers man-check readme-check unit integration fuzz-replay browser-test-if-chromium

# No include or call between two src/ folders goes both ways, directly or
# round a cycle (include edges from the sources, call edges from nm).
.PHONY: layers
layers: build/kagami
	@/usr/bin/python3 scripts/layers.py

check-asan: test

demo: deps-demo build/kagami
	@/usr/bin/python3 examples/demo.py

# --- benchmarks (bench/run.py, bench/bench_diff.c) ----------------------
.PHONY: bench-diff
BENCH_LIBOBJS := $(filter-out build/obj/src/cli/main.o,$(OBJS))
build/bench/libkagami.a: $(BENCH_LIBOBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
build/bench/bench_diff: bench/bench_diff.c build/bench/libkagami.a
	$(CC) $(ALL_CFLAGS) -o $@ $< build/bench/libkagami.a $(PKG_LIBS)
build/bench/store_write: bench/store_write.c build/bench/libkagami.a
	$(CC) $(ALL_CFLAGS) -o $@ $< build/bench/libkagami.a $(PKG_LIBS)
bench-diff: deps build/bench/bench_diff
	@build/bench/bench_diff
bench: deps-test build/kagami build/bench/bench_diff
	@/usr/bin/python3 bench/run.py
	@# Replay pacing (issue 7): reported, not a gate; a miss shows in its output.
	-@/usr/bin/python3 bench/replay_rate.py --binary build/kagami
	@# Memory per tracked endpoint (issue 16): reported, not a gate.
	-@/usr/bin/python3 bench/endpoint_memory.py --binary build/kagami
	@# The PostgreSQL store (issue 15): reported, not a gate.
	-@/usr/bin/python3 bench/pg_write.py --binary build/kagami
	-@/usr/bin/python3 bench/pg_report.py --binary build/kagami

# --- fuzzing (clang + libFuzzer) -----------------------------------------
# The library sources are built once with coverage instrumentation into an
# archive each target links against. `make fuzz` runs every target for
# FUZZ_SECONDS, growing a scratch corpus in build/fuzz/corpus (the seeds in
# tests/fuzz/corpus stay as committed); `make fuzz-replay` only runs the
# committed seeds and regression inputs once each.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
# (-Wno-string-concatenation: clang flags SQL split over lines in an array
# initialiser, which gcc, the main compiler, rightly accepts.)
FUZZ_FLAGS   := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -O1 -g \
                -Wno-string-concatenation
FUZZ_TARGETS := request response config linediff jsondiff jsonfast htmldiff decode textnorm endpoint \
                compare noise_export pgrecord htmlfast
FUZZ_BINS    := $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)
FUZZ_OBJS    := $(LIBSRCS:%.c=build/fuzz/obj/%.o) $(GEN_SRCS:build/gen/%.c=build/fuzz/obj/gen/%.o)
# The config target swaps in a sandboxed Lua, a bounded allocator, a
# smaller instruction budget and a resolver that never touches the network
# (see fuzz_config.c).
FUZZ_LDFLAGS_config := -Wl,--wrap=luaL_newstate,--wrap=luaL_openlibs,--wrap=lua_sethook,--wrap=getaddrinfo

FUZZ_COMPILE = $(FUZZ_CC) $(CSTD) $(WARN) $(PKG_CFLAGS) -Isrc $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -MMD -MP
build/fuzz/obj/%.o: %.c | deps-test
	@mkdir -p $(dir $@)
	$(FUZZ_COMPILE) -c $< -o $@
build/fuzz/obj/gen/%.o: build/gen/%.c | deps-test
	@mkdir -p $(dir $@)
	$(FUZZ_COMPILE) -c $< -o $@

build/fuzz/libkagami.a: $(FUZZ_OBJS)
	@rm -f $@
	ar rcs $@ $^

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_util.h build/fuzz/libkagami.a
	$(FUZZ_CC) $(CSTD) $(WARN) $(PKG_CFLAGS) -Isrc $(FUZZ_FLAGS) -fsanitize=fuzzer \
	  -o $@ $< build/fuzz/libkagami.a $(FUZZ_LDFLAGS_$*) $(PKG_LIBS)

# Options every run shares: a slow input is a finding (timeout), so is an
# allocation of more than 512 MiB at once.
FUZZ_RUN_OPTS := -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 -print_final_stats=1

fuzz: deps-test $(FUZZ_BINS)
	@mkdir -p build/fuzz/logs; failed=""; \
	for t in $(FUZZ_TARGETS); do \
	  mkdir -p build/fuzz/corpus/$$t build/fuzz/artifacts/$$t; \
	  dict=""; [ -f tests/fuzz/$$t.dict ] && dict="-dict=tests/fuzz/$$t.dict"; \
	  build/fuzz/fuzz_$$t $(FUZZ_RUN_OPTS) -max_total_time=$(FUZZ_SECONDS) $$dict \
	    -artifact_prefix=build/fuzz/artifacts/$$t/ \
	    build/fuzz/corpus/$$t tests/fuzz/corpus/$$t >build/fuzz/logs/$$t.log 2>&1; \
	  rc=$$?; \
	  runs=$$(sed -n 's/^stat::number_of_executed_units: *//p' build/fuzz/logs/$$t.log); \
	  if [ $$rc -eq 0 ]; then echo "fuzz $$t: $${runs:-?} executions, nothing found"; \
	  else echo "fuzz $$t: FOUND something (exit $$rc); see build/fuzz/logs/$$t.log"; \
	    grep -E 'ERROR|invariant|Test unit written' build/fuzz/logs/$$t.log | head -5; \
	    failed="$$failed $$t"; fi; \
	done; \
	[ -z "$$failed" ] || { echo "fuzz: findings in:$$failed"; exit 1; }

fuzz-replay: deps-test $(FUZZ_BINS)
	@set -e; for t in $(FUZZ_TARGETS); do \
	  n=$$(find tests/fuzz/corpus/$$t -type f | wc -l); \
	  find tests/fuzz/corpus/$$t -type f -print0 | \
	    xargs -0 build/fuzz/fuzz_$$t $(FUZZ_RUN_OPTS) >build/fuzz/replay-$$t.log 2>&1 || \
	    { tail -30 build/fuzz/replay-$$t.log; echo "fuzz-replay $$t: FAILED"; exit 1; }; \
	  echo "fuzz-replay $$t: $$n inputs ok"; \
	done

# --- soak: SOAK_SECONDS (default 180) of mixed load under ASan+UBSan ------
.PHONY: soak
soak: deps-test build/asan/kagami
	KAGAMI_BIN=$(CURDIR)/build/asan/kagami /usr/bin/python3 tests/soak/soak.py

# --- man pages, install, Debian package ------------------------------------
# kagami.lua(5) is generated from docs/config.md and kagami(1) from the
# binary's --help texts (scripts/man.py). `man-check` fails when
# docs/config.md and the keys `kagami check` accepts disagree (a key
# missing, unknown, or with another default), or when a page does not
# render cleanly; `readme-check` holds the README's key tables to
# docs/config.md the same way.
.PHONY: man man-check man-verify readme-check install uninstall deb deb-test
MAN_PAGES := build/man/kagami.1 build/man/kagami.lua.5
man: $(MAN_PAGES)
$(MAN_PAGES) &: build/kagami scripts/man.py docs/config.md
	/usr/bin/python3 scripts/man.py --kagami build/kagami --out build/man
man-check: deps-test man-verify
# The check itself, without installing anything (debian/rules runs it).
man-verify: build/kagami $(MAN_PAGES)
	@/usr/bin/python3 scripts/man.py --kagami build/kagami --check
	@for p in $(MAN_PAGES); do \
	  out=$$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z $$p 2>&1); \
	  [ -z "$$out" ] || { echo "$$p: groff warnings:"; echo "$$out"; exit 1; }; \
	done; echo "man-check: docs/config.md matches kagami config-keys; man pages render"
readme-check: build/kagami
	@/usr/bin/python3 scripts/man.py --kagami build/kagami --check-readme README.md

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/kagami
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
EXAMPLES   := $(sort $(wildcard examples/*.lua))
# The config is installed only when there is none: `make install` over an
# existing setup never replaces what its owner wrote (nor does uninstall
# remove it).
install: build/kagami $(MAN_PAGES)
	install -D -m 755 build/kagami $(DESTDIR)$(BINDIR)/kagami
	install -D -m 644 build/man/kagami.1 $(DESTDIR)$(MANDIR)/man1/kagami.1
	install -D -m 644 build/man/kagami.lua.5 $(DESTDIR)$(MANDIR)/man5/kagami.lua.5
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR)/examples
	sed 's#/usr/bin/kagami#$(BINDIR)/kagami#g' dist/kagami.service \
	  >$(DESTDIR)$(UNITDIR)/kagami.service
	chmod 644 $(DESTDIR)$(UNITDIR)/kagami.service
	install -D -m 644 dist/kagami.logrotate $(DESTDIR)$(SYSCONFDIR)/logrotate.d/kagami
	[ -e $(DESTDIR)$(SYSCONFDIR)/kagami/kagami.lua ] || \
	  install -D -m 644 dist/kagami.lua $(DESTDIR)$(SYSCONFDIR)/kagami/kagami.lua
	install -m 644 $(EXAMPLES) $(DESTDIR)$(DOCDIR)/examples/
	install -m 644 docs/migrating.md docs/config.md $(DESTDIR)$(DOCDIR)/
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/kagami $(DESTDIR)$(MANDIR)/man1/kagami.1 \
	  $(DESTDIR)$(MANDIR)/man5/kagami.lua.5 $(DESTDIR)$(UNITDIR)/kagami.service \
	  $(DESTDIR)$(SYSCONFDIR)/logrotate.d/kagami
	rm -rf $(DESTDIR)$(DOCDIR)
	@[ ! -e $(DESTDIR)$(SYSCONFDIR)/kagami/kagami.lua ] || \
	  echo "uninstall: kept $(DESTDIR)$(SYSCONFDIR)/kagami/kagami.lua (your config)"

# dpkg-buildpackage cleans, builds and writes the .deb next to the source
# tree, so it runs on a copy in build/deb/ (the working tree's build/ and
# parent directory stay as they are) and the packages are moved to build/.
DEB_VERSION = $(shell dpkg-parsechangelog -l debian/changelog -S Version)
deb:
	@scripts/deps.sh deb
	rm -rf build/deb && mkdir -p build/deb/kagami
	tar --exclude=./build --exclude=./.git --exclude=node_modules -cf - . | tar -C build/deb/kagami -xf -
	cd build/deb/kagami && DEB_BUILD_OPTIONS="parallel=2 $$DEB_BUILD_OPTIONS" \
	  dpkg-buildpackage -us -uc -b
	mv build/deb/kagami*_$(DEB_VERSION)_*.deb build/deb/kagami_$(DEB_VERSION)_*.changes \
	  build/deb/kagami_$(DEB_VERSION)_*.buildinfo build/
	@ls build/kagami_$(DEB_VERSION)_*.deb
# Builds the package, runs lintian (errors fail), installs it with apt,
# checks the installed binary, example config, unit and man pages, and
# purges it again (tests/packaging/deb_test.sh). Needs root.
deb-test: deb
	bash tests/packaging/deb_test.sh build/kagami_$(DEB_VERSION)_*.deb

clean:
	rm -rf build

-include $(OBJS:.o=.d) $(ASAN_OBJS:.o=.d) $(FUZZ_OBJS:.o=.d)
