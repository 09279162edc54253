#!/usr/bin/env bash
# Installs the Debian 12 packages Warren needs to build, run and test; does nothing when all are present.
set -euo pipefail

packages=(
  # Build: the renderer links WebKitGTK and GTK through wry.
  pkg-config libwebkit2gtk-4.1-dev libgtk-3-dev libsoup-3.0-dev libjavascriptcoregtk-4.1-dev
  # Run: X11, software OpenGL for the browser's egui chrome, fonts.
  libx11-6 libxcursor1 libxrandr2 libxi6 libxkbcommon-x11-0 libgl1 libegl1 libgl1-mesa-dri fonts-dejavu-core
  # Headless runs and tests: a private X server, input, screenshots, window listing.
  xvfb xdotool imagemagick x11-utils
  # The renderer sandbox: bubblewrap makes each renderer's namespaces and file view (and WebKit's
  # own web-process sandbox uses it too, with xdg-dbus-proxy).
  bubblewrap xdg-dbus-proxy
  # What a desktop has, so the tests see it too: a session bus daemon and dbus-launch (dbus-x11),
  # which GLib and GTK autolaunch when no session bus is running. The tests prove that renderers
  # start none of it (issue 7, defect 10); without these packages that test would pass vacuously.
  dbus dbus-daemon dbus-x11
  # Part 5: each renderer's own display is a nested X server (Xephyr) inside the browser window.
  xserver-xephyr
  # Tests: a local HTTP server; another X client's clipboard and PRIMARY selection (xclip); a
  # non-US keyboard layout on the test display (setxkbmap).
  python3 xclip x11-xkb-utils
)

exec "$(dirname "${BASH_SOURCE[0]}")/install-packages.sh" "system packages" "${packages[@]}"
