#!/usr/bin/env bash
# The loss ablation on the generalization benchmark's held-out families (docs/benchmarks.md,
# "Ablations on the held-out families"): the same short fine-tuning of one weights file with the
# shipped recipe (control: fidelity + EAR, no SDA, no GAN) and with one change each (+SDA, +GAN,
# -EAR), then GENRE-CMR with each result on the trees of scripts/generalization.sh. A fine-tuning
# ablation, not training from scratch: it asks whether a loss helps from where the weights stand,
# on CPU budgets. The residual path is not ablated here (removing it changes the network).
# Simulated training samples only; the held-out trees are never trained on.
#
#   scripts/ablation.sh GENERALIZATION_OUT [--init-weights PATH] [--steps N] [--out DIR]
#
# GENERALIZATION_OUT: the OUT of scripts/generalization.sh (its data/<family>/ trees). Defaults:
# the shipped weights, 400 steps (one epoch), DIR = GENERALIZATION_OUT/ablation. Writes
# DIR/runs/<variant>/ (each training run), DIR/pred/<family>/<variant>/ and DIR/compare/<family>/.
# Environment: GENRE (default .venv/bin/genre), DEVICE (auto).
set -euo pipefail
bench=${1:?usage: scripts/ablation.sh GENERALIZATION_OUT [--init-weights PATH] [--steps N] [--out DIR]}
shift
init=genre/weights/genre_small_simulated.safetensors steps=400 out="$bench/ablation"
while [ $# -gt 0 ]; do
    case "$1" in
        --init-weights) init=$2; shift 2 ;;
        --steps) steps=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "scripts/ablation.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
read -ra genre <<< "${GENRE:-.venv/bin/genre}"
declare -A variant_flags=(
    [control]="--no-sda --no-gan"
    [plus-sda]="--no-gan"
    [plus-gan]="--no-sda"
    [minus-ear]="--no-sda --no-gan --no-ear"
)
variants=(control plus-sda plus-gan minus-ear)
start=$SECONDS
for variant in "${variants[@]}"; do
    run="$out/runs/$variant"
    [ -f "$run/best.safetensors" ] && continue
    # The same seed, samples, curriculum and learning rate for every variant: only the loss differs.
    # shellcheck disable=SC2086  # the flags are words
    "${genre[@]}" train --simulated "$steps" --steps-per-epoch "$steps" --simulated-val 24 --out "$run" --preset small \
        --epochs 1 --num-workers 1 --no-checkpointing --lr 1e-4 --ckpt-every "$steps" --seed 3 \
        --curriculum 0:4,8,12,16,20,24 --init-weights "$init" ${variant_flags[$variant]}
done
for family in cardiac bart biological; do
    data="$bench/data/$family"
    [ -d "$data" ] || continue
    preds=()
    for variant in "${variants[@]}"; do
        "${genre[@]}" predict --input "$data" --output "$out/pred/$family/$variant" --method genre --output-mode ranking \
            --device "${DEVICE:-auto}" --checkpoint "$out/runs/$variant/best.safetensors"
        preds+=("$out/pred/$family/$variant")
    done
    "${genre[@]}" compare --gt "$data" --pred "${preds[@]}" --output-mode ranking --grader test --out "$out/compare/$family"
done
echo "ablation: $out/compare/<family>/comparison.md ($((SECONDS - start)) s)"
