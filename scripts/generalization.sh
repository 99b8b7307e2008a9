#!/usr/bin/env bash
# The generalization benchmark (docs/benchmarks.md, "Generalization benchmark (held-out
# families)"): zero-filled, CG-SENSE, BART (when `bart` is on PATH) and GENRE-CMR on image
# families that training never sees (genre synth --family bart, biological) and, for reference,
# on a fresh tree of the training phantom (cardiac, seed 101, a seed no training run uses).
# Synthetic and package-shipped images, not CMRxRecon data. Fixed seeds: reruns are identical.
# About 20 minutes on two CPU cores, most of it BART.
#
#   scripts/generalization.sh [OUT] [--checkpoint PATH] [--adapt STEPS [--adapt-lr LR]]
#
# OUT (default build/generalization) receives data/<family>/ (the trees), pred/<family>/<method>/
# (img4ranking outputs, --output-mode ranking), compare/<family>/ (each method's per_file.csv and
# summary.csv, comparison.md) and generalization.md (the three families' tables, one after the
# other). --checkpoint: GENRE-CMR weights (default: the shipped ones). --adapt adds a genre-adapted
# column: the network with test-time adaptation (genre predict --adapt; 10-25 times its time on
# the CPU). Environment: GENRE (the genre command, default .venv/bin/genre; may hold arguments,
# e.g. "python -m genre"), DEVICE (auto), BART_THREADS (BART's OpenMP threads, default 1).
set -euo pipefail
out=build/generalization
checkpoint=()
adapt=()
while [ $# -gt 0 ]; do
    case "$1" in
        --checkpoint) checkpoint=(--checkpoint "$2"); shift 2 ;;
        --adapt | --adapt-lr) adapt+=("$1" "$2"); shift 2 ;;
        -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
        *) out=$1; shift ;;
    esac
done
read -ra genre <<< "${GENRE:-.venv/bin/genre}"

families=(cardiac bart biological)
declare -A synth=(
    [cardiac]="--seed 101"
    [bart]="--family bart --frames 6 --slices 2 --seed 11"
    [biological]="--family biological --frames 6 --slices 2 --seed 12"
)
methods=(zero-filled sense)
if command -v bart >/dev/null; then methods+=(bart); else echo "bart not on PATH: the bart family and the BART column are left out" >&2; families=(cardiac biological); fi
methods+=(genre genre-guarded)
[ ${#adapt[@]} -gt 0 ] && methods+=(genre-adapted)

start=$SECONDS
report="$out/generalization.md"
mkdir -p "$out"
: > "$report.tmp"
for family in "${families[@]}"; do
    data="$out/data/$family"
    # shellcheck disable=SC2086  # the synth options are words
    [ -d "$data" ] || "${genre[@]}" synth --out "$data" --layout validation ${synth[$family]}
    preds=()
    for method in "${methods[@]}"; do
        flags=(--method "$method") prefix=()
        [ "$method" = genre ] && flags+=("${checkpoint[@]}")
        # GENRE-CMR behind the hold-out guard against CG-SENSE (genre/recon/guard.py).
        [ "$method" = genre-guarded ] && flags=(--method genre --guard sense "${checkpoint[@]}")
        [ "$method" = genre-adapted ] && flags=(--method genre "${adapt[@]}" "${checkpoint[@]}")
        # BART's OpenMP threads spin at their barriers: on two cores shared with other work a
        # 56x64 slice took 8-20 s with the default threads and 0.7-1.1 s with one.
        [ "$method" = bart ] && prefix=(env "OMP_NUM_THREADS=${BART_THREADS:-1}")
        "${prefix[@]}" "${genre[@]}" predict --input "$data" --output "$out/pred/$family/$method" \
            --output-mode ranking --device "${DEVICE:-auto}" "${flags[@]}"
        preds+=("$out/pred/$family/$method")
    done
    # The test scorer (arrays squeezed): the one docs/benchmarks.md's tables were scored with.
    "${genre[@]}" compare --gt "$data" --pred "${preds[@]}" --output-mode ranking --grader test --out "$out/compare/$family"
    { echo "### $family"; echo; cat "$out/compare/$family/comparison.md"; echo; } >> "$report.tmp"
done
mv "$report.tmp" "$report"
echo "generalization benchmark: $report ($((SECONDS - start)) s)"
