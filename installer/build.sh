#!/usr/bin/env bash
# Build the installer: the one-folder PyInstaller payload (dist/vital/), made smaller by slim.py, the
# frozen smoke test, then the release a site receives (dist/release/: archive, .sha256, CycloneDX SBOM,
# the default language model beside it, signed manifest),
# checked with installer/verify exactly as the site will check it.
#   installer/build.sh [--key RELEASE_KEY.pem]     (default: the DEMO-ONLY release key)
set -euo pipefail
cd "$(dirname "$0")"
../scripts/setup.sh
rm -rf build dist
../.venv/bin/pyinstaller --noconfirm --log-level WARN vital.spec
mkdir -p dist/vital/share
cp linux/vital-desktop.desktop linux/vital-desktop.svg linux/vital-launcher.sh dist/vital/share/
../.venv/bin/python slim.py dist/vital --json dist/slim.json   # strip (not openblas), drop, link copies
../.venv/bin/python smoke_test.py dist/vital
../.venv/bin/python package.py dist/vital --out dist/release --model auto "$@"
key=demo-release-key.pub.pem
python3 verify dist/release/*.tar.gz --key "$key"
du -sh dist/vital dist/release/*.tar.gz
