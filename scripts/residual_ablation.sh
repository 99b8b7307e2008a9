#!/usr/bin/env bash
# The residual-path ablation on the generalization benchmark (docs/benchmarks.md, "Ablations on
# the held-out families"): the small preset trained from scratch twice with the shipped recipe
# (simulated samples, fidelity + EAR, no SDA, no GAN), with and without the residual path across
# cascades (--no-residual), the same seed, samples, curriculum and steps; then GENRE-CMR with each
# on the trees of scripts/generalization.sh. From scratch because removing the path changes the
# network (scripts/ablation.sh fine-tunes the shipped weights instead). Short CPU runs: they
# compare the two arms with each other, not with the shipped weights.
#
#   scripts/residual_ablation.sh GENERALIZATION_OUT [--epochs N] [--out DIR]
#
# GENERALIZATION_OUT: the OUT of scripts/generalization.sh (its data/<family>/ trees). Defaults:
# 8 epochs of 300 steps, DIR = GENERALIZATION_OUT/residual-ablation. Writes DIR/runs/<arm>/,
# DIR/pred/<family>/<arm>/ and DIR/compare/<family>/. Environment: GENRE (default
# .venv/bin/genre), DEVICE (auto).
set -euo pipefail
bench=${1:?usage: scripts/residual_ablation.sh GENERALIZATION_OUT [--epochs N] [--out DIR]}
shift
epochs=8 out="$bench/residual-ablation"
while [ $# -gt 0 ]; do
    case "$1" in
        --epochs) epochs=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "scripts/residual_ablation.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
read -ra genre <<< "${GENRE:-.venv/bin/genre}"
declare -A arm_flags=([residual]="" [no-residual]="--no-residual")
arms=(residual no-residual)
start=$SECONDS
for arm in "${arms[@]}"; do
    run="$out/runs/$arm"
    [ -f "$run/best.safetensors" ] && continue
    # The shipped weights' first run's recipe (docs/benchmarks.md), shortened: only the path differs.
    # shellcheck disable=SC2086  # the flags are words
    "${genre[@]}" train --simulated 400 --steps-per-epoch 300 --simulated-val 24 --out "$run" --preset small \
        --epochs "$epochs" --num-workers 1 --no-checkpointing --no-sda --no-gan --lr 3e-4 --ckpt-every 300 --seed 21 \
        --curriculum "0:4,8;0.2:4,8,12,16;0.4:4,8,12,16,20,24" ${arm_flags[$arm]}
done
for family in cardiac bart biological; do
    data="$bench/data/$family"
    [ -d "$data" ] || continue
    preds=()
    for arm in "${arms[@]}"; do
        "${genre[@]}" predict --input "$data" --output "$out/pred/$family/$arm" --method genre --output-mode ranking \
            --device "${DEVICE:-auto}" --checkpoint "$out/runs/$arm/best.safetensors"
        preds+=("$out/pred/$family/$arm")
    done
    "${genre[@]}" compare --gt "$data" --pred "${preds[@]}" --output-mode ranking --grader test --out "$out/compare/$family"
done
echo "residual ablation: $out/compare/<family>/comparison.md ($((SECONDS - start)) s)"
