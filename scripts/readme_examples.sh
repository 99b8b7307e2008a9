#!/usr/bin/env bash
# Run the README's command examples top to bottom, as a newcomer would once the environment
# exists (make env). tests/test_readme_examples.py runs this script, so CI (make test) does too.
#
# Every line of a ``` block in README.md that starts with `genre`, `torchrun` or
# `python predict.py` runs, in README order, in a fresh working folder; continuation lines are
# joined. Where a command cannot run as written here:
#   - `make ...` lines (the environment; CI runs `make test`, which runs this script) are skipped;
#   - /data/CMRxRecon2025, the real training release, is the synthetic training tree data/train
#     that the README writes just before;
#   - `python predict.py` reads the container's /input: where there is none it must stop with
#     exit status 2 and the one line "/input: input folder not found".
# So that the walk takes a minute or two on two cores, commands get small sizes appended
# (argparse keeps a flag's last value); README_FULL_SIZE=1 appends nothing (the README's own
# sizes: tens of minutes on a CPU):
#   genre synth  --size 32x40 --coils 4 --frames 3 --slices 2 --stems cine_sax,lge_sax
#   genre train  --preset tiny --epochs 1 --steps-per-epoch 2 --val-max-samples 2 --num-workers 0
#
# Settings, all optional:
#   PYTHON            the Python with genre installed (default: python3)
#   README_WORK       working folder (default: a new temporary folder, removed at the end)
#   README_FULL_SIZE  1: run the README's sizes
set -euo pipefail

# One OpenMP thread per process unless told otherwise: beside other work on two cores, two
# threads per process made `genre predict --method genre` on the small tree 11 times slower
# (34 s against 3 s, measured beside a training run); the commands compute the same either way.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
if [[ -n ${README_WORK:-} ]]; then
    WORK=$README_WORK
    mkdir -p "$WORK"
else
    WORK=$(mktemp -d)
    trap 'rm -rf "$WORK"' EXIT
fi
WORK=$(cd "$WORK" && pwd)

small() {  # the flags appended to a genre subcommand, by subcommand
    [[ ${README_FULL_SIZE:-0} == 1 ]] && return
    case $1 in
        synth) echo "--size 32x40 --coils 4 --frames 3 --slices 2 --stems cine_sax,lge_sax" ;;
        train) echo "--preset tiny --epochs 1 --steps-per-epoch 2 --val-max-samples 2 --num-workers 0" ;;
    esac
}
# shellcheck disable=SC2046  # the small flags are meant to split into words
genre() { "$PYTHON" -m genre "$@" $(small "$1"); }
# shellcheck disable=SC2046
torchrun() {
    local args=("$@") i
    for ((i = 0; i < ${#args[@]}; i++)); do [[ ${args[i]} == genre ]] && break; done
    "$PYTHON" -m torch.distributed.run "$@" $(small "${args[i + 1]}")
}
python() { "$PYTHON" "$@"; }

mapfile -t COMMANDS < <("$PYTHON" - "$ROOT/README.md" << 'PY'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
for block in re.findall(r"^```\n(.*?)^```", text, flags=re.S | re.M):
    for line in block.replace("\\\n", " ").splitlines():
        if re.match(r"(genre|torchrun|python predict\.py) ", line):
            print(line)
PY
)
[[ ${#COMMANDS[@]} -gt 0 ]] || { echo "readme_examples: no commands found in $ROOT/README.md" >&2; exit 1; }

cd "$WORK"
cp "$ROOT/predict.py" .  # `python predict.py` runs from the working folder, as from a clone
ran=0
start=$SECONDS
for command in "${COMMANDS[@]}"; do
    command=${command//\/data\/CMRxRecon2025/data/train}
    echo "== $command"
    tic=$SECONDS
    if [[ $command == "python predict.py"* && ! -d /input ]]; then
        status=0
        eval "$command" 2> predict.err || status=$?
        if [[ $status != 2 ]] || ! grep -q "/input: input folder not found" predict.err; then
            cat predict.err >&2
            echo "readme_examples: '$command' without /input must exit 2 naming it (exit $status)" >&2
            exit 1
        fi
    else
        eval "$command" > command.out 2>&1 || { cat command.out >&2; echo "readme_examples: FAILED: $command" >&2; exit 1; }
    fi
    echo "   $((SECONDS - tic)) s"
    ran=$((ran + 1))
done
echo "readme_examples: all $ran commands of README.md ran in $((SECONDS - start)) s"
