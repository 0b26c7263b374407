#!/bin/sh
# VITAL Desktop launcher, installed as APP_ROOT/bin/vital-desktop and APP_ROOT/bin/vital.
# It starts versions/<current>/. When an application update waits (pending.json), the next start
# of the desktop app (headless sites: `vital app finish-update`) has the CURRENT,
# known-good version first backs up the site store and runs the new version's `vital self-check`
# (`vital app finish-update`): `current` is switched (atomically) only if the check passes;
# otherwise the update is rolled back, the reason is printed, and the current version starts.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
name=$(basename "$0")
current=$(cat "$root/current" 2>/dev/null || true)
if [ -z "$current" ] || [ ! -d "$root/versions/$current" ]; then
    echo "$name: no installed version in $root/versions (see $root/current)" >&2
    exit 1
fi
if [ -f "$root/pending.json" ] && [ "$name" = "vital-desktop" ]; then
    "$root/versions/$current/vital" app finish-update --app-root "$root" >&2 \
        || echo "$name: the update step failed; starting $current" >&2
    current=$(cat "$root/current")
fi
exec "$root/versions/$current/$name" "$@"
