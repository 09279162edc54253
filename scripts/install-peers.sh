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

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "Installing the peer browsers: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# A fresh image has no package lists: update them when any missing package has no candidate.
for p in "${missing[@]}"; do
  if ! apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [^(]'; then
    $SUDO apt-get update -q
    break
  fi
done
# Lists that are present but stale name package versions the mirror no longer has: refresh once.
if ! $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"; then
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
