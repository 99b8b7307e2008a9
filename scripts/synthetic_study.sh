#!/usr/bin/env bash
# The seen-vs-unseen study on synthetic phantoms (docs/benchmarks.md): train GENRE-CMR and its
# ablations on three centre/vendor domains, hold two out, reconstruct a fresh tree of all five
# with every method (BART too when `bart` is on PATH) and compare. Synthetic data only: this
# checks the method's behaviour, it is no CMRxRecon result.
#
#   scripts/synthetic_study.sh [OUT] [RUNS]     RUNS: space-separated subset of
#                                               "full no-sda no-ear no-residual no-gan"
# Environment: GENRE (the genre command, default .venv/bin/genre), EPOCHS (8), STEPS (250 per
# epoch), LR (3e-4), DEVICE (auto).
set -euo pipefail
out=${1:-build/study}
runs=${2:-"full no-sda no-ear no-residual no-gan"}
genre=${GENRE:-.venv/bin/genre}
unseen=Center001/UIH_30T_umr780,Center006/UIH_50T_umr_jupiter

[ -d "$out/train" ] || "$genre" synth --out "$out/train" --layout train --cases 3 --domains 5 --size 120x128 --seed 0
[ -d "$out/val" ] || "$genre" synth --out "$out/val" --layout validation --cases 2 --domains 5 --size 120x128 --seed 1

preds=()
baselines=(zero-filled sense)
if command -v bart >/dev/null; then baselines+=(bart); else echo "bart not on PATH: the BART column is left out" >&2; fi
for method in "${baselines[@]}"; do
    "$genre" predict --input "$out/val" --output "$out/pred/$method" --method "$method" --device "${DEVICE:-auto}"
    preds+=("$out/pred/$method")
done
for run in $runs; do
    flags=()
    [ "$run" = full ] || flags=("--$run")
    if [ ! -f "$out/runs/$run/last.safetensors" ]; then
        "$genre" train --data "$out/train" --out "$out/runs/$run" --preset small --epochs "${EPOCHS:-8}" \
            --steps-per-epoch "${STEPS:-250}" --ckpt-every "${STEPS:-250}" --val-max-samples 12 --lr "${LR:-3e-4}" \
            --no-checkpointing --holdout-domains "$unseen" --device "${DEVICE:-auto}" "${flags[@]}"
    fi
    "$genre" predict --input "$out/val" --output "$out/pred/genre-$run" --method genre \
        --checkpoint "$out/runs/$run/last.safetensors" --device "${DEVICE:-auto}"
    preds+=("$out/pred/genre-$run")
done
# The test scorer (arrays squeezed): the one docs/benchmarks.md's tables were scored with.
"$genre" compare --gt "$out/val" --pred "${preds[@]}" --unseen "$unseen" --grader test --out "$out/compare"
