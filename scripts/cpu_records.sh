#!/usr/bin/env bash
# The cpu-profile FER2013 records: every table of chapters 02-07 on FER2013 Training ->
# PublicTest (validation: a stratified 10 % holdout of Training), seed 0. Resumable: a run whose
# record exists is skipped. book/records/cpu holds the old profile's records (6,000-image subset,
# made at commit 8581c7b); the current recipe writes to book/records/cpu_v2.
#   bash scripts/cpu_records.sh [DATA_ROOT] [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/fer2013}
OUT=${2:-book/records/cpu_v2}
PY=${PY:-.venv/bin/python}
common=(--dataset fer2013 --data-root "$DATA" --profile cpu --out "$OUT")
# 1. the comparison table (chapter 07): every method, natural imbalance, clean labels
$PY -m ferlib.compare "${common[@]}" --methods baseline baseline+balanced ahm cucn ean scn dan latent_aug dan+balanced
# 2. the noisy-label table (chapter 05): 10 % and 20 % flipped training labels
$PY -m ferlib.compare "${common[@]}" --methods baseline scn ean --noise 0.1 0.2
# 3. the chapters' other table rows: DAN + latent augmentation (Table I), the CUCN ladder (Table II,
#    mixing in every rung, and the no-mixing base as an extra row)
$PY -m ferlib.compare "${common[@]}" --methods dan+latent_aug cucn:base cucn:mix cucn:w+mix
