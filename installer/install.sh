#!/usr/bin/env bash
# Install (or update) VITAL Desktop from a release archive on removable media, for this user:
#   installer/install.sh /media/usb/vital-desktop-VERSION-linux-x86_64.tar.gz [--key RELEASE.pub.pem]
# installer/verify checks the signature, archive, SBOM and every member BEFORE anything is unpacked.
# Each version is unpacked beside the others under ~/.local/opt/vital-desktop/; `current` points at
# the new one only after it unpacked whole; the previous one stays for rollback (`current` back).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ARCHIVE=${1:?usage: install.sh ARCHIVE [--key RELEASE.pub.pem]}
shift
PREFIX=${VITAL_PREFIX:-$HOME/.local/opt/vital-desktop}
mkdir -p "$PREFIX"
installed=""
[ -L "$PREFIX/current" ] && installed=$(basename "$(readlink "$PREFIX/current")" | sed -E 's/^vital-desktop-([0-9.]+)-.*/\1/')
platform="linux-$(uname -m)"
args=(--platform "$platform" --unpack "$PREFIX")
[ -n "$installed" ] && args+=(--installed-version "$installed")
report=$(python3 "$HERE/verify" "$ARCHIVE" "${args[@]}" "$@")
new=$(printf '%s' "$report" | python3 -c 'import json,sys; print(json.load(sys.stdin)["unpacked"])')
ln -sfn "$new" "$PREFIX/current.new" && mv -T "$PREFIX/current.new" "$PREFIX/current"
apps="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
mkdir -p "$apps"
sed "s|@PREFIX@|$PREFIX|g" "$new/share/vital-desktop.desktop" > "$apps/vital-desktop.desktop"
echo "installed $(basename "$new") in $PREFIX (current); previous versions kept beside it"
