#!/usr/bin/env bash
# The seeds' 15-minute workflow on the command line, DATA → … → IMPROVE plus calibration and
# bundles, on a fresh demo site in a temporary folder. Every step is a real `vital` command;
# the script stops at the first failure. Usage: scripts/walkthrough.sh [SITE_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
export VITAL_HOME="${1:-$(mktemp -d)/site}"
V=".venv/bin/vital --quiet"
as() { VITAL_USER=$1 VITAL_PASSWORD=$2 "${@:3}"; }
eng() { as engineer vital-engineer $V "$@"; }
ins() { as inspector vital-inspector $V "$@"; }
adm() { as admin vital-admin $V "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
SHEET="Defect Detection - Scintillator Crystals"
TEMPLATE="Defect Classification - Visual Inspection"

step "init the demo site"; $V init --demo
step "DATA";     eng sheet list; eng sheet show "$SHEET" --limit 3
step "LABEL, Mode B: label an unlabeled item"
ITEM=$(eng --json review items --sheet "$SHEET" --type classification --filter unlabeled --limit 1 \
       | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["item_ref"])')
ins label set --sheet "$SHEET" --item "$ITEM" --type classification --data '{"defect_type": "inclusion", "severity": "major"}' \
    --notes "foreign particle embedded during growth"
step "GENERATE: a training sheet reuses every canonical label"
eng generate --sheet "$SHEET" --template "$TEMPLATE" --name "Q&A v1" --ai classifier
step "LABEL, Mode A: approve confident pre-labels in bulk"
eng review bulk --training-sheet "Q&A v1" --action approve --threshold 0.95
eng review bulk --training-sheet "Q&A v1" --action approve --threshold 0.95 --yes
step "TRAIN with the dual quality gates"
eng export-training "Q&A v1" --use training --val-fraction 0.2 --seed 42 --out "$VITAL_HOME/../export"
eng train --sheet "$SHEET" --name defect-classifier-local --activate
step "MONITOR";  eng predict --sheet "$SHEET" >/dev/null; eng monitor
step "IMPROVE";  eng gaps
step "lineage";  eng lineage defect-classifier-local
step "CALIBRATE"; eng mc run --detector nai-3x3 --source point --distance-cm 10 --nuclide Cs-137 --histories 1e6 --seed 1
step "BUNDLES";  adm bundle verify bundles/demo/01-model-update.vbundle; adm bundle import bundles/demo/01-model-update.vbundle
adm bundle export --channel exports --to "$VITAL_HOME/../usb"
step "audit";    adm audit verify
