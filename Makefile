# Builds, runs, tests and installs Warren; `make help` lists the targets.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build
# Every target drives cargo, which takes a lock on the target directory anyway.
.NOTPARALLEL:

CARGO ?= cargo
# Arguments for `make run`, e.g. make run ARGS="--profile /tmp/p" URL=https://example.org
ARGS ?=
URL ?=
# Where `make install` puts Warren; DESTDIR is prepended for staged (package) installs.
PREFIX ?= $(HOME)/.local
DESTDIR ?=

BINDIR := $(PREFIX)/bin
LIBDIR := $(PREFIX)/lib/warren
APPDIR := $(PREFIX)/share/applications
ICONDIR := $(PREFIX)/share/icons/hicolor
ICON_SIZES := 48 128 256

# CI must build exactly the dependency versions of the committed Cargo.lock.
ifneq ($(CI),)
LOCKED := --locked
endif

# Cargo's output directory, which CARGO_TARGET_DIR may move; the end-to-end tests are told where the binaries are.
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
BROWSER := $(TARGET_DIR)/release/browser
RENDERER := $(TARGET_DIR)/release/renderer
export WARREN_BIN_DIR := $(abspath $(TARGET_DIR)/release)

.PHONY: help deps build run screenshot test bench bench-peers check install uninstall clean

help:
	@echo "make build      install missing system packages, build browser and renderer (release)"
	@echo "make run        build, then launch the browser; ARGS=... and URL=... are passed to it."
	@echo "                Without \$$DISPLAY: private Xvfb, screenshot to target/warren-screenshot.png, exit."
	@echo "make test       build, then every test (unit and end-to-end) under a private Xvfb"
	@echo "make fuzz       fuzz the hostile-input parsers long (FUZZ_CASES per property, at most FUZZ_SECONDS each)"
	@echo "make bench      build, then the benchmarks (issue 9's targets): task manager refresh cost; new tab to pixels,"
	@echo "                restore, whole-tree memory by tab count and page, IPC, idle cost, input latency, UI stalls;"
	@echo "                peer browsers when installed. Results, table and charts in target/bench/"
	@echo "make bench-peers install Epiphany, surf and Chromium (scripts/install-peers.sh), then make bench"
	@echo "make check      cargo fmt --check, clippy with warnings as errors, shellcheck of scripts/"
	@echo "make install    install under PREFIX (default ~/.local) with a desktop entry and icons"
	@echo "make uninstall  remove what make install put under PREFIX"
	@echo "make screenshot regenerate docs/screenshot.png and docs/task-manager.png (headless)"
	@echo "make clean      cargo clean"

deps:
	scripts/install-deps.sh

build: deps
	$(CARGO) build --release --bins $(LOCKED)

run: build
	@if [ -n "$${DISPLAY:-}" ]; then \
	  echo "$(BROWSER) $(ARGS) $(URL)"; \
	  exec $(BROWSER) $(ARGS) $(URL); \
	else \
	  echo "No \$$DISPLAY: running headless (scripts/run-headless.sh)"; \
	  WARREN_BROWSER=$(BROWSER) exec scripts/run-headless.sh $(ARGS) $(URL); \
	fi

# The README's screenshots: the new-tab page in a fresh profile, on a screen the size of the browser window; and the
# Task Manager (Shift+Escape) over three tabs, one of them busy, after a few seconds of history.
# The first tab is the active one; WebKit throttles the timers of hidden pages, so the busy page comes first.
SCREENSHOT_TABS := \
  'data:text/html,<title>A%20busy%20page</title><script>setInterval(()=>{const t=Date.now();while(Date.now()-t<30);},40)</script>' \
  'data:text/html,<title>Notes</title><h1>Notes</h1>' warren://newtab/
screenshot: build
	WARREN_BROWSER=$(BROWSER) WARREN_SCREENSHOT=$(CURDIR)/docs/screenshot.png \
	  WARREN_LOG=$(TARGET_DIR)/warren-screenshot.log scripts/run-headless.sh
	WARREN_BROWSER=$(BROWSER) WARREN_SCREENSHOT=$(CURDIR)/docs/task-manager.png \
	  WARREN_LOG=$(TARGET_DIR)/warren-screenshot.log WARREN_KEYS=shift+Escape WARREN_SETTLE=8 \
	  WARREN_SHOT_WINDOW="Task Manager" scripts/run-headless.sh $(SCREENSHOT_TABS)

# The end-to-end tests start the binaries in target/release, which `build` has just made from these sources. They run
# one at a time (each starts its own Xvfb and browser); everything runs under a private Xvfb, so no test depends on
# (or draws on) the caller's display. Both groups run even if the first fails; the target fails if either did.
test: build
	@status=0; \
	echo "+ scripts/with-xvfb.sh $(CARGO) test --release --workspace --exclude warren-tests $(LOCKED) --no-fail-fast"; \
	scripts/with-xvfb.sh $(CARGO) test --release --workspace --exclude warren-tests $(LOCKED) --no-fail-fast \
	  || status=1; \
	echo "+ scripts/with-xvfb.sh $(CARGO) test --release -p warren-tests $(LOCKED) --no-fail-fast -- --test-threads=1"; \
	scripts/with-xvfb.sh $(CARGO) test --release -p warren-tests $(LOCKED) --no-fail-fast -- --test-threads=1 \
	  || status=1; \
	if [ "$$status" -ne 0 ]; then echo "make test: FAILED (see the test output above)"; else echo "make test: all tests passed"; fi; \
	exit "$$status"

# The benchmarks. The task manager's measurement core (browser/examples/taskman_bench.rs): the CPU cost of one
# refresh of 30 tabs (about 120 processes, a nested display each), with and without PSS, against its 10 ms target.
# Then the shell benchmark (tests/src/bin/shell-bench/) on the release binaries, under its own Xvfb, section by
# section: new tab to loaded and to its pixels on screen (20 runs, the spare renderer ready); cold new-tab, crash
# and close latencies; memory per tab and what the nested display costs, key press to keydown, the browser's idle
# CPU and wake-ups with and without the Task Manager; the whole process tree's PSS with 1, 5, 10 and 20 live tabs
# and 20 tabs under --max-live-tabs 3 for the bench pages (resources/bench/) and the Rust docs; the same for
# Epiphany, surf and Chromium when installed (else a note: `make bench-peers` installs them); memory with
# discarding; restore of a discarded tab against a fresh load; IPC round trip and throughput; the UI thread's
# stalls while the Task Manager refreshes. It writes results.json (every sample and the machine), results.md
# (targets with PASS/MISS and tables) and PNG charts to target/bench/ (docs/benchmarks.md says how to read them).
# Pass options with BENCH_ARGS, e.g. BENCH_ARGS="--runs 3" or BENCH_ARGS="--only new-tab,tree-memory" (see
# shell-bench --help). Both run even if the first misses its target; a missed target is not a failure, a broken run is.
BENCH_ARGS ?=
BENCH_OUT := $(TARGET_DIR)/bench
bench: build
	@status=0; \
	echo "+ $(CARGO) run --release -p warren-browser --example taskman_bench $(LOCKED)"; \
	$(CARGO) run --release -p warren-browser --example taskman_bench $(LOCKED) || status=1; \
	echo "+ $(TARGET_DIR)/release/shell-bench --out $(BENCH_OUT) $(BENCH_ARGS)"; \
	$(TARGET_DIR)/release/shell-bench --out $(BENCH_OUT) $(BENCH_ARGS) || status=1; \
	exit "$$status"

# The peer browsers Warren is measured against, from Debian's packages, then the benchmark with them in the same run.
bench-peers: deps
	scripts/install-peers.sh
	$(MAKE) --no-print-directory bench

# Long runs of the property-based fuzz tests that `make test` runs briefly: browser/tests/fuzz.rs (up frames, renderer
# messages, snapshots, control-socket lines, session files) and the renderer's WebKit session-state checks
# (renderer/src/webkit_state_fuzz.rs). Each property runs FUZZ_CASES cases, or stops (passing) when its FUZZ_SECONDS are
# up; `timeout` ends a run that hangs. A failing input is printed shrunk and saved next to its test file
# (*.proptest-regressions), and later runs replay it first. Both groups run even if the first fails.
FUZZ_CASES ?= 200000
FUZZ_SECONDS ?= 120
# The browser's fuzz file has 15 properties, two at a time: with margin, this is a hang, not a slow run.
FUZZ_TIMEOUT = $$(( $(FUZZ_SECONDS) * 15 + 300 ))
.PHONY: fuzz
fuzz: deps
	@status=0; \
	export PROPTEST_CASES=$(FUZZ_CASES) WARREN_FUZZ_SECONDS=$(FUZZ_SECONDS); \
	$(CARGO) test --release -p warren-browser --test fuzz $(LOCKED) --no-run; \
	$(CARGO) test --release -p warren-renderer --bin renderer $(LOCKED) --no-run; \
	echo "+ timeout $(FUZZ_TIMEOUT) $(CARGO) test --release -p warren-browser --test fuzz $(LOCKED) -- --nocapture"; \
	timeout --kill-after=10 $(FUZZ_TIMEOUT) $(CARGO) test --release -p warren-browser --test fuzz $(LOCKED) -- --nocapture \
	  || { echo "make fuzz: the browser's properties failed or hung (exit $$?)"; status=1; }; \
	echo "+ timeout $(FUZZ_TIMEOUT) $(CARGO) test --release -p warren-renderer --bin renderer $(LOCKED) -- webkit_state::fuzz --nocapture"; \
	timeout --kill-after=10 $(FUZZ_TIMEOUT) $(CARGO) test --release -p warren-renderer --bin renderer $(LOCKED) -- webkit_state::fuzz --nocapture \
	  || { echo "make fuzz: the renderer's properties failed or hung (exit $$?)"; status=1; }; \
	if [ "$$status" -ne 0 ]; then echo "make fuzz: FAILED (see above)"; else echo "make fuzz: no property failed"; fi; \
	exit "$$status"

# Every check runs even if an earlier one fails; the target fails if any did.
check: deps
	@status=0; \
	echo "+ $(CARGO) fmt --all --check"; \
	$(CARGO) fmt --all --check || status=1; \
	echo "+ $(CARGO) clippy --workspace --all-targets --release $(LOCKED) -- -D warnings"; \
	$(CARGO) clippy --workspace --all-targets --release $(LOCKED) -- -D warnings || status=1; \
	if command -v shellcheck >/dev/null; then \
	  echo "+ shellcheck -x scripts/*.sh .ci/run"; shellcheck -x scripts/*.sh .ci/run || status=1; \
	else echo "shellcheck not installed: scripts not checked (apt-get install shellcheck)"; fi; \
	if command -v desktop-file-validate >/dev/null; then \
	  echo "+ desktop-file-validate resources/warren.desktop"; desktop-file-validate resources/warren.desktop || status=1; \
	else echo "desktop-file-validate not installed: desktop entry not checked (apt-get install desktop-file-utils)"; fi; \
	if [ "$$status" -ne 0 ]; then echo "make check: FAILED (see above)"; else echo "make check: all checks passed"; fi; \
	exit "$$status"

# The browser looks for `renderer` next to its own executable, so both live in LIBDIR and BINDIR/warren is a symlink
# to the browser (the kernel resolves it, so the browser's own path is LIBDIR/browser).
install: build
	install -d "$(DESTDIR)$(LIBDIR)" "$(DESTDIR)$(BINDIR)" "$(DESTDIR)$(APPDIR)"
	install -m 755 $(BROWSER) $(RENDERER) "$(DESTDIR)$(LIBDIR)/"
	ln -sfn "$(LIBDIR)/browser" "$(DESTDIR)$(BINDIR)/warren"
	sed -e 's|^Exec=warren |Exec=$(BINDIR)/warren |' -e 's|^TryExec=warren$$|TryExec=$(BINDIR)/warren|' \
	  resources/warren.desktop > "$(DESTDIR)$(APPDIR)/warren.desktop"
	chmod 644 "$(DESTDIR)$(APPDIR)/warren.desktop"
	for size in $(ICON_SIZES); do \
	  install -D -m 644 resources/icons/warren-$$size.png "$(DESTDIR)$(ICONDIR)/$${size}x$${size}/apps/warren.png"; \
	done
	install -D -m 644 resources/icons/warren.svg "$(DESTDIR)$(ICONDIR)/scalable/apps/warren.svg"
	@if [ -z "$(DESTDIR)" ]; then $(MAKE) --no-print-directory refresh-desktop-caches; fi
	@echo "Installed: $(DESTDIR)$(BINDIR)/warren -> $(LIBDIR)/browser, desktop entry $(DESTDIR)$(APPDIR)/warren.desktop"
	@if [ -z "$(DESTDIR)" ]; then \
	  case ":$$PATH:" in *":$(BINDIR):"*) ;; *) echo "Note: $(BINDIR) is not on your PATH";; esac; \
	fi

uninstall:
	rm -f "$(DESTDIR)$(BINDIR)/warren" "$(DESTDIR)$(LIBDIR)/browser" "$(DESTDIR)$(LIBDIR)/renderer"
	rmdir "$(DESTDIR)$(LIBDIR)" 2>/dev/null || true
	rm -f "$(DESTDIR)$(APPDIR)/warren.desktop" "$(DESTDIR)$(ICONDIR)/scalable/apps/warren.svg"
	for size in $(ICON_SIZES); do rm -f "$(DESTDIR)$(ICONDIR)/$${size}x$${size}/apps/warren.png"; done
	@if [ -z "$(DESTDIR)" ]; then $(MAKE) --no-print-directory refresh-desktop-caches; fi

# Tells the desktop that applications and icons changed: the MIME cache is rebuilt when the tool exists, and the icon
# theme directory's time is updated, which is how the icon theme specification says to announce new icons.
.PHONY: refresh-desktop-caches
refresh-desktop-caches:
	@if command -v update-desktop-database >/dev/null; then update-desktop-database -q "$(APPDIR)" || true; fi
	@if [ -d "$(ICONDIR)" ]; then touch "$(ICONDIR)"; fi

clean:
	$(CARGO) clean
