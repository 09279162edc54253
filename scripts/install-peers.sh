#!/usr/bin/env bash
# Installs the browsers Warren is measured against (issue 9, `make bench-peers`): Epiphany and surf
# (both WebKitGTK, like Warren's renderer) and Chromium (the multi-process reference), from
# Debian 12's own packages. Installs only what is missing; does nothing when all are present.
set -euo pipefail

packages=(
  # GNOME Web: one UI process, a WebKitWebProcess per tab, one network process.
  epiphany-browser
  # suckless surf: one process (and web process) per window.
  surf
  # Chromium: a browser process, a renderer per site, GPU, network and utility processes.
  chromium
  # Epiphany needs a session bus (it is a GApplication); the benchmark runs it under
  # dbus-run-session, which the dbus package provides.
  dbus
)

exec "$(dirname "${BASH_SOURCE[0]}")/install-packages.sh" "peer browsers" "${packages[@]}"
