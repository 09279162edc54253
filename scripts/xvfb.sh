# Starts and stops a private Xvfb for the other scripts; source it, do not run it.
# shellcheck shell=bash disable=SC2034  # XVFB_PID and XVFB_DISPLAY are read by the scripts that source this file.
#
# start_xvfb GEOMETRY: starts Xvfb on a free display it picks itself (-displayfd, so two runs never race for a
# number), waits until it accepts clients, and sets XVFB_PID and XVFB_DISPLAY (e.g. ":99"). stop_xvfb ends it by pid.

XVFB_PID=""
XVFB_DISPLAY=""

start_xvfb() {
  local geometry="${1:-1280x800x24}"
  local fifo_dir display_number=""
  fifo_dir="$(mktemp -d "${TMPDIR:-/tmp}/warren-xvfb.XXXXXX")"
  mkfifo "$fifo_dir/displayfd"
  # Xvfb writes the display number to fd 3 once it accepts connections. The fifo is also opened read-write here
  # (fd 4), so the reader below never blocks forever if Xvfb dies before writing.
  exec 4<>"$fifo_dir/displayfd"
  Xvfb -displayfd 3 -screen 0 "$geometry" -nolisten tcp -noreset 3>"$fifo_dir/displayfd" >"$fifo_dir/log" 2>&1 &
  XVFB_PID=$!
  local waited=0
  while ! read -r -t 1 display_number <&4; do
    waited=$((waited + 1))
    if ! kill -0 "$XVFB_PID" 2>/dev/null || [ "$waited" -ge 30 ]; then
      break
    fi
  done
  if [ -z "$display_number" ]; then
    echo "error: Xvfb did not start (waited ${waited} s); its log:" >&2
    cat "$fifo_dir/log" >&2 || true
    exec 4>&-
    rm -rf "$fifo_dir"
    stop_xvfb
    return 1
  fi
  exec 4>&-
  rm -rf "$fifo_dir"
  XVFB_DISPLAY=":$display_number"
}

stop_xvfb() {
  if [ -n "$XVFB_PID" ] && kill -0 "$XVFB_PID" 2>/dev/null; then
    kill -TERM "$XVFB_PID" 2>/dev/null || true
    wait "$XVFB_PID" 2>/dev/null || true
  fi
  XVFB_PID=""
}
