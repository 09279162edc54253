#!/usr/bin/env bash
# Installs those of the named Debian packages that are missing; does nothing when all are present.
# Usage: install-packages.sh WHAT PACKAGE...  (WHAT names them in the message, e.g. "system packages").
# Used by install-deps.sh (what Warren needs) and install-peers.sh (the browsers it is measured
# against). Runs apt-get as root, through sudo otherwise.
set -euo pipefail

what=$1
shift

missing=()
for p in "$@"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "Installing missing $what: ${missing[*]}"
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
