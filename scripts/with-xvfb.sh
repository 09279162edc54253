#!/usr/bin/env bash
# Runs a command under a private Xvfb (its own display, whatever $DISPLAY says) and stops the Xvfb afterwards.
#
# Usage: scripts/with-xvfb.sh COMMAND [ARGS...]. Exits with the command's status. The screen size can be set with
# WARREN_XVFB_SCREEN (default 1280x800x24).
set -euo pipefail

if [ $# -eq 0 ]; then
  echo "usage: $0 COMMAND [ARGS...]" >&2
  exit 2
fi

# shellcheck source-path=SCRIPTDIR source=xvfb.sh
. "$(dirname "$0")/xvfb.sh"

trap stop_xvfb EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_xvfb "${WARREN_XVFB_SCREEN:-1280x800x24}"
echo "with-xvfb: Xvfb pid $XVFB_PID on display $XVFB_DISPLAY" >&2
# Wayland variables would let GTK or winit bypass the private X server, so they are dropped.
unset WAYLAND_DISPLAY WAYLAND_SOCKET
export DISPLAY="$XVFB_DISPLAY"
status=0
"$@" || status=$?
exit "$status"
