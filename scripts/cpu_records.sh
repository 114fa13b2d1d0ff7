#!/usr/bin/env bash
# Every cpu-profile record the chapters and the scoreboard read, for three seeds: FER2013
# Training -> PublicTest (validation: a stratified 10 % holdout of Training, drawn per seed).
#
#   bash scripts/cpu_records.sh [DATA_ROOT] [OUT]            # in the foreground (CKPT=... too)
#   COMMIT=1 nohup bash scripts/cpu_records.sh > _build/records.log 2>&1 &   # in the background
#
# Resumable at any point: every (method, condition, seed) whose record exists in OUT is skipped,
# and a run interrupted half-way resumes from its last finished epoch: each run keeps its
# training state in its own folder under CKPT (default _build/ckpt, git-ignored), removed once
# its record is written (`python -m ferlib.compare --checkpoint-dir`). The baseline, VAE-GAN and
# AHM features a run builds on are reused once recorded. Seeds run in order (all of seed 0,
# then 1, then 2), so the tables are complete for one seed first.
# With COMMIT=1 each finished run's records are committed at once, so a later sitting continues
# from the repository. Shared work is done once per seed: AHM and its two controls reuse the
# baseline's frozen features, one EAN run gives the batch-graph and the single-image records,
# latent augmentation and DAN + latent augmentation share one VAE-GAN.
# book/records/cpu holds the old protocol's records (6,000-image subset, one seed); the current
# recipe writes to book/records/cpu_v2 (see README, "Records").
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/fer2013}
OUT=${2:-book/records/cpu_v2}
PY=${PY:-.venv/bin/python}
SEEDS=${SEEDS:-0 1 2}
CKPT=${CKPT:-_build/ckpt}
common=(--dataset fer2013 --data-root "$DATA" --profile cpu --out "$OUT" --checkpoint-dir "$CKPT")

# the comparison (chapter 07), the chapters' other rows (Table I, Table II's ladder with and
# without mixing) and the controls (balanced resampling with latent augmentation's draws)
CLEAN=(baseline baseline+balanced ahm latent_aug dan dan+balanced dan+latent_aug balanced:matched
       scn ean cucn cucn:base cucn:mix cucn:w+mix)
# the noisy-label table (chapter 05): 10 % and 20 % flipped training labels
NOISY=(baseline scn ean)

commit() {  # commit what this run wrote, if asked to; never fails the loop
  if [ "${COMMIT:-0}" = 1 ] && [ -n "$(git status --porcelain -- "$OUT")" ]; then
    git add -- "$OUT" && git commit -q -m "Records: $1 (cpu profile, FER2013, seed $2)" -- "$OUT" \
      || echo "cpu_records.sh: could not commit the records of $1 seed $2" >&2
  fi
}

for seed in $SEEDS; do
  for m in "${CLEAN[@]}"; do
    $PY -m ferlib.compare "${common[@]}" --seeds "$seed" --methods "$m"
    commit "$m" "$seed"
  done
  for m in "${NOISY[@]}"; do
    $PY -m ferlib.compare "${common[@]}" --seeds "$seed" --methods "$m" --noise 0.1 0.2
    commit "$m at 10 and 20 % noise" "$seed"
  done
done
