#!/usr/bin/env bash
# Install VITAL Desktop from a release archive on removable media, for this user:
#   installer/install.sh /media/usb/vital-desktop-VERSION-linux-x86_64.tar.gz [--key RELEASE.pub.pem]
# installer/verify checks the signature, archive, SBOM and every member BEFORE anything is unpacked.
# Each version is unpacked beside the others in APP_ROOT/versions/VERSION/ (APP_ROOT is
# ~/.local/opt/vital-desktop, or VITAL_PREFIX); the `current` pointer file names the one the
# launcher (APP_ROOT/bin/vital-desktop, APP_ROOT/bin/vital) starts and is replaced atomically, only
# after the new version unpacked whole; `previous` names the one before (`vital app rollback`).
# Later updates can also come as signed app bundles: `vital app update FILE` (docs/install.md).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ARCHIVE=${1:?usage: install.sh ARCHIVE [--key RELEASE.pub.pem]}
shift
PREFIX=${VITAL_PREFIX:-$HOME/.local/opt/vital-desktop}
mkdir -p "$PREFIX/versions" "$PREFIX/bin"
installed=$(cat "$PREFIX/current" 2>/dev/null || true)
platform="linux-$(uname -m)"
args=(--platform "$platform" --unpack "$PREFIX/versions")
[ -n "$installed" ] && args+=(--installed-version "$installed")
report=$(python3 "$HERE/verify" "$ARCHIVE" "${args[@]}" "$@")
field() { printf '%s' "$report" | python3 -c "import json,sys; print(json.load(sys.stdin)[\"$1\"])"; }
unpacked=$(field unpacked)
# The default language model travels beside the archive (verified above); it is kept once for
# every version in APP_ROOT/models/ (the app finds it there).
mkdir -p "$PREFIX/models"
printf '%s' "$report" | python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin).get("models", [])))' |
while IFS= read -r model; do
    [ -n "$model" ] || continue
    target="$PREFIX/models/$(basename "$model")"
    [ -f "$target" ] || { cp "$model" "$target.part" && mv -f "$target.part" "$target"; }
done
version=$(field version)
if [ -e "$PREFIX/versions/$version" ]; then
    rm -rf "$unpacked"
    echo "install.sh: version $version is already in $PREFIX/versions; not replaced" >&2
    exit 1
fi
mv -T "$unpacked" "$PREFIX/versions/$version"
launcher="$PREFIX/versions/$version/share/vital-launcher.sh"
[ -f "$launcher" ] || launcher="$HERE/linux/vital-launcher.sh"
mkdir -p "$PREFIX/share"
cp "$PREFIX/versions/$version/share/vital-desktop.svg" "$PREFIX/share/vital-desktop.svg"
for name in vital vital-desktop; do
    install -m 0755 "$launcher" "$PREFIX/bin/.$name.new"
    mv -f "$PREFIX/bin/.$name.new" "$PREFIX/bin/$name"
done
[ -n "$installed" ] && { printf '%s\n' "$installed" > "$PREFIX/.previous.new"; mv -f "$PREFIX/.previous.new" "$PREFIX/previous"; }
printf '%s\n' "$version" > "$PREFIX/.current.new" && mv -f "$PREFIX/.current.new" "$PREFIX/current"
apps="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
mkdir -p "$apps"
sed "s|@PREFIX@|$PREFIX|g" "$PREFIX/versions/$version/share/vital-desktop.desktop" > "$apps/vital-desktop.desktop"
echo "installed VITAL Desktop $version in $PREFIX/versions/$version (current); previous versions kept beside it"
