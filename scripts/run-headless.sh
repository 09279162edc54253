#!/usr/bin/env bash
# Runs the browser once without a display: private Xvfb, load the pages, take a screenshot, shut down, print its path.
#
# Usage: scripts/run-headless.sh [BROWSER-ARGS...]   (what `make run` does when $DISPLAY is empty)
#
# The browser gets a control socket, and a throwaway profile unless the arguments name one with --profile (a browser
# already running on the default profile would otherwise take our URLs and leave us nothing to photograph). Once
# every tab reports "loading": false over the control socket, the whole X screen is saved as a PNG, the browser is
# asked to shut down, and Xvfb is stopped. A trap ends whatever is still running, by pid, on any exit.
#
# Environment:
#   WARREN_BROWSER       the browser binary (default: target/release/browser)
#   WARREN_SCREENSHOT    where the PNG goes (default: target/warren-screenshot.png)
#   WARREN_LOG           where the browser's output goes (default: the screenshot's path with .log for .png)
#   WARREN_LOAD_TIMEOUT  seconds to wait for the pages to load (default: 60)
#   WARREN_XVFB_SCREEN   Xvfb screen (default: 1024x768x24, the size of the browser window)
#   WARREN_KEYS          keys to press once the pages have loaded, in xdotool's names (e.g. "shift+Escape")
#   WARREN_SETTLE        seconds to wait after that before the screenshot (default: 1)
#   WARREN_SHOT_WINDOW   photograph only the top-level window with this exact name (default: the whole screen)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
browser="${WARREN_BROWSER:-$root/target/release/browser}"
screenshot="${WARREN_SCREENSHOT:-$root/target/warren-screenshot.png}"
load_timeout="${WARREN_LOAD_TIMEOUT:-60}"
log="${WARREN_LOG:-${screenshot%.png}.log}"

# shellcheck source-path=SCRIPTDIR source=xvfb.sh
. "$root/scripts/xvfb.sh"

if [ ! -x "$browser" ]; then
  echo "error: $browser is missing; build it first with 'cargo build --release --bins' (or use 'make run')" >&2
  exit 1
fi
if ! command -v python3 >/dev/null || ! command -v import >/dev/null; then
  echo "error: python3 and ImageMagick's import are needed; run scripts/install-deps.sh" >&2
  exit 1
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/warren-run.XXXXXX")"
socket="$work/control.sock"
browser_pid=""

# Waits up to $2 seconds for process $1 (a child of this shell) to exit and puts its exit status in exit_status;
# returns 1 if it is still running.
exit_status=0
wait_for_exit() {
  local pid="$1" deadline=$((SECONDS + $2))
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      return 1
    fi
    sleep 0.1
  done
  exit_status=0
  wait "$pid" 2>/dev/null || exit_status=$?
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$browser_pid" ] && kill -0 "$browser_pid" 2>/dev/null; then
    echo "run-headless: stopping browser pid $browser_pid" >&2
    kill -TERM "$browser_pid" 2>/dev/null || true
    if ! wait_for_exit "$browser_pid" 5; then
      kill -KILL "$browser_pid" 2>/dev/null || true
      wait "$browser_pid" 2>/dev/null || true
    fi
  fi
  stop_xvfb
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show_log() {
  echo "--- last lines of the browser log ($log) ---" >&2
  tail -n 40 "$log" >&2 || true
}

# Reads a `tabs` reply on stdin, prints one line per tab, and exits 0 when there is at least one tab and none is
# loading any more, 1 while something is still loading, 2 when the reply makes no sense.
tabs_settled() {
  python3 -c '
import json, sys
try:
    reply = json.load(sys.stdin)
except ValueError:
    sys.exit(2)
tabs = reply.get("result") if isinstance(reply, dict) else reply
if not isinstance(tabs, list):
    sys.exit(2)
for t in tabs:
    print("  tab %s [%s%s] %s  %r" % (t.get("tab_id"), t.get("state"), ", loading" if t.get("loading") else "",
                                      t.get("url"), t.get("title")))
settled = tabs and all(not t.get("loading") and t.get("state") in ("active", "background", "crashed") for t in tabs)
sys.exit(0 if settled else 1)
'
}

profile_args=(--profile "$work/profile")
for arg in "$@"; do
  case "$arg" in
    --profile) profile_args=() ;;
  esac
done

mkdir -p "$(dirname "$screenshot")" "$(dirname "$log")"
start_xvfb "${WARREN_XVFB_SCREEN:-1024x768x24}"
echo "run-headless: Xvfb pid $XVFB_PID on display $XVFB_DISPLAY"

unset WAYLAND_DISPLAY WAYLAND_SOCKET
DISPLAY="$XVFB_DISPLAY" "$browser" --control-socket "$socket" "${profile_args[@]}" "$@" >"$log" 2>&1 &
browser_pid=$!
echo "run-headless: browser pid $browser_pid, control socket $socket, log $log"

# Poll the control socket until every tab has loaded. The state must hold on two polls in a row, so a tab that has
# not started loading yet is not mistaken for one that has finished.
deadline=$((SECONDS + load_timeout))
settled_polls=0
summary=""
while :; do
  if ! kill -0 "$browser_pid" 2>/dev/null; then
    status=0
    wait "$browser_pid" || status=$?
    browser_pid=""
    echo "error: the browser exited (status $status) before its pages loaded" >&2
    show_log
    exit 1
  fi
  if [ -S "$socket" ] && reply="$("$browser" ctl --socket "$socket" tabs 2>/dev/null)"; then
    rc=0
    summary="$(tabs_settled <<<"$reply")" || rc=$?
    if [ "$rc" -eq 0 ]; then
      settled_polls=$((settled_polls + 1))
      if [ "$settled_polls" -ge 2 ]; then
        break
      fi
    else
      settled_polls=0
    fi
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "error: the pages did not finish loading within ${load_timeout} s (set WARREN_LOAD_TIMEOUT to wait longer)" >&2
    if [ -n "$summary" ]; then echo "$summary" >&2; fi
    show_log
    exit 1
  fi
  sleep 0.25
done

echo "run-headless: loaded:"
echo "$summary"
if [ -n "${WARREN_KEYS:-}" ]; then
  # The browser grabs its shortcuts on its own window, so the keys need not be aimed at a window.
  echo "run-headless: pressing $WARREN_KEYS"
  # shellcheck disable=SC2086  # WARREN_KEYS is a list of xdotool key names.
  DISPLAY="$XVFB_DISPLAY" xdotool key --clearmodifiers $WARREN_KEYS
fi
# A moment for the last frame of the page and the chrome to reach the X server (longer for WARREN_SETTLE).
sleep "${WARREN_SETTLE:-1}"
window=root
if [ -n "${WARREN_SHOT_WINDOW:-}" ]; then
  if ! window="$(DISPLAY="$XVFB_DISPLAY" timeout 20 xdotool search --sync --limit 1 --name "^${WARREN_SHOT_WINDOW}\$")"; then
    echo "error: no window named \"$WARREN_SHOT_WINDOW\" appeared within 20 s" >&2
    show_log
    exit 1
  fi
fi
import -display "$XVFB_DISPLAY" -window "$window" "$screenshot"

"$browser" ctl --socket "$socket" shutdown >/dev/null
if ! wait_for_exit "$browser_pid" 10; then
  echo "error: the browser did not exit within 10 s of 'shutdown'" >&2
  show_log
  exit 1
fi
browser_pid=""
stop_xvfb

echo "Screenshot: $screenshot"
if [ "$exit_status" -ne 0 ]; then
  echo "error: the browser exited with status $exit_status after 'shutdown'" >&2
  show_log
  exit 1
fi
if grep -q '\[crashed' <<<"$summary"; then
  echo "error: a tab crashed; the screenshot shows its crash notice" >&2
  show_log
  exit 1
fi
