#!/usr/bin/env bash
# Makes Warren's PNG app icons (48, 128 and 256 px) from resources/icons/warren.svg; the PNGs are committed.
#
# Run it after editing the SVG. It needs ImageMagick's SVG coder, which Debian ships in
# libmagickcore-6.q16-6-extra; that package is for icon work only, so it is not in install-deps.sh.
set -euo pipefail

cd "$(dirname "$0")/.."
svg=resources/icons/warren.svg

if ! convert -list format 2>/dev/null | grep -qE '^ +SVG '; then
  echo "error: ImageMagick cannot read SVG here; install libmagickcore-6.q16-6-extra and run this again" >&2
  exit 1
fi

for size in 48 128 256; do
  out="resources/icons/warren-${size}.png"
  # Rendering at four times the size and scaling down gives smooth edges at every size. Dates are left out of the
  # PNG so that regenerating an unchanged icon gives an identical file.
  convert -background none -density 288 "$svg" -resize "${size}x${size}" -depth 8 -strip \
    -define png:exclude-chunks=date,time "PNG32:$out"
  echo "$out"
done
