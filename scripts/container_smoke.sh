#!/usr/bin/env bash
# Build the real Dockerfile with podman and run the image the way the CMRxRecon harness does
# (no arguments, no network, read-only /input, root), then validate and score its output.
#
# No image registry is reachable here, so the base image named in the Dockerfile's FROM line
# is replaced by a local stand-in: a debootstrapped Debian with Python and the CPU torch wheel
# in a virtual environment at /opt/conda (where the real base keeps its python), imported and
# tagged with the base image's exact name. docs/container.md explains every step and what
# differs from the real base.
#
# Needs root (debootstrap, rootful podman) and apt; installs podman, runc and debootstrap when
# missing. Settings, all optional:
#   SMOKE_WORK          working folder (build/container-smoke)
#   SMOKE_IMAGE         tag of the image built from the Dockerfile (localhost/genre-cmr:smoke)
#   SMOKE_INPUT         input tree to run on instead of a fresh `genre synth --layout validation`
#   SMOKE_METHOD        GENRE_METHOD passed to the container; default: none (the image's
#                       default, genre) when genre/weights holds weights, else sense
#   SMOKE_OUTPUT_MODE   GENRE_OUTPUT_MODE passed to the container (full)
#   SMOKE_REBUILD_BASE  1: rebuild the stand-in base even if an image of that name exists
#   SMOKE_TORCH_WHEEL   torch wheel for the stand-in (/opt/wheels/torch-2.13.0+cpu-cp311-...whl)
#   SMOKE_MIRROR        Debian mirror for debootstrap (default: the host's first apt source)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${SMOKE_WORK:-$ROOT/build/container-smoke}
IMAGE=${SMOKE_IMAGE:-localhost/genre-cmr:smoke}
OUTPUT_MODE=${SMOKE_OUTPUT_MODE:-full}
TORCH_WHEEL=${SMOKE_TORCH_WHEEL:-/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl}
SUITE=bookworm  # its python3 is 3.11, the real base's minor version and the wheel's tag
BASE=$(awk 'toupper($1) == "FROM" { print $2; exit }' "$ROOT/Dockerfile")
# docker resolves an unqualified name to Docker Hub; tagging the stand-in with the qualified
# name makes podman's short-name lookup find it locally for `FROM $BASE`.
BASE_QUALIFIED=docker.io/$BASE

die() { echo "container_smoke: $*" >&2; exit 1; }
TIMINGS=()
stage() { STAGE=$1; STAGE_START=$SECONDS; echo; echo "== $STAGE"; }
stage_done() { TIMINGS+=("$(printf '%5ds  %s' $((SECONDS - STAGE_START)) "$STAGE")"); }
run() { echo "+ $*"; "$@"; }

[[ $EUID -eq 0 ]] || die "must run as root (debootstrap and rootful podman)"
[[ -n $BASE ]] || die "$ROOT/Dockerfile: no FROM line"

if [[ -x $ROOT/.venv/bin/genre ]]; then
    GENRE=$ROOT/.venv/bin/genre
    HOST_PYTHON=$ROOT/.venv/bin/python
else
    GENRE=$(command -v genre) || die "no genre command (.venv/bin/genre or on PATH); run make env first"
    HOST_PYTHON=$(command -v python3)
fi

if [[ -n ${SMOKE_METHOD:-} ]]; then
    METHOD=$SMOKE_METHOD
elif compgen -G "$ROOT/genre/weights/*.safetensors" > /dev/null; then
    METHOD=""  # the image's default: GENRE-CMR with its baked-in weights
else
    METHOD=sense
    echo "container_smoke: no weights under genre/weights: the container runs with GENRE_METHOD=sense" >&2
fi

mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

stage "tools: podman, runc, debootstrap"
if ! command -v podman > /dev/null || ! command -v runc > /dev/null || ! command -v debootstrap > /dev/null; then
    run apt-get update -qq
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap
fi
# A private containers.conf rather than the host's /etc/containers one: the ulimits podman
# cannot raise on this kind of machine, and runc instead of crun.
export CONTAINERS_CONF=$WORK/containers.conf
cat > "$CONTAINERS_CONF" << 'EOF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
EOF
podman --version
stage_done

stage "stand-in for $BASE"
if podman image exists "$BASE_QUALIFIED" && [[ ${SMOKE_REBUILD_BASE:-0} != 1 ]]; then
    echo "reusing the stand-in already tagged $BASE_QUALIFIED (SMOKE_REBUILD_BASE=1 rebuilds it)"
else
    [[ -f $TORCH_WHEEL ]] || die "$TORCH_WHEEL: torch wheel for the stand-in not found (set SMOKE_TORCH_WHEEL)"
    mirror=${SMOKE_MIRROR:-$( (cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources 2> /dev/null || true) \
        | awk '$1 == "URIs:" || $1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) { print $i; exit } }')}
    mirror=${mirror:-http://deb.debian.org/debian}
    rootfs=$WORK/rootfs
    rm -rf "$rootfs"
    run debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates "$SUITE" "$rootfs" "$mirror" > "$WORK/debootstrap.log" \
        || die "debootstrap failed; see $WORK/debootstrap.log"
    tar -C "$rootfs" -c . | run podman import --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" - localhost/genre-standin-debian:"$SUITE"
    rm -rf "$rootfs"

    # pip in the stand-in gets the host's CA bundle and package index, so that the Dockerfile's
    # `pip install` works behind this machine's TLS proxy and mirror. They go into the stand-in
    # only; the committed Dockerfile never names an index.
    context=$WORK/standin
    rm -rf "$context"
    mkdir -p "$context"
    cp "$TORCH_WHEEL" "$context/"
    cp "${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}" "$context/host-ca.crt"
    host_pip() {  # the host's setting from its environment, else its pip configuration; file:// indexes dropped
        local value=${!2:-}
        [[ -n $value ]] || value=$("$HOST_PYTHON" -m pip config get "global.$1" 2> /dev/null || true)
        tr ' ' '\n' <<< "$value" | grep -E '^https?://' | paste -sd ' ' || true
    }
    {
        echo "[global]"
        echo "cert = /etc/ssl/certs/host-ca.crt"
        index=$(host_pip index-url PIP_INDEX_URL)
        extra=$(host_pip extra-index-url PIP_EXTRA_INDEX_URL)
        [[ -z $index ]] || echo "index-url = $index"
        [[ -z $extra ]] || echo "extra-index-url = $extra"
    } > "$context/pip.conf"
    cat > "$context/Containerfile" << EOF
FROM localhost/genre-standin-debian:$SUITE
COPY host-ca.crt /etc/ssl/certs/host-ca.crt
COPY pip.conf /etc/pip.conf
COPY $(basename "$TORCH_WHEEL") /tmp/
RUN python3 -m venv /opt/conda \\
    && /opt/conda/bin/pip install --no-cache-dir /tmp/$(basename "$TORCH_WHEEL") \\
    && rm /tmp/*.whl
ENV PATH=/opt/conda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
WORKDIR /workspace
EOF
    run podman build --pull=never --network host -t "$BASE_QUALIFIED" "$context"
    rm -rf "$context"
    podman rmi localhost/genre-standin-debian:"$SUITE" > /dev/null
fi
podman run --rm --network none "$BASE_QUALIFIED" python -c 'import sys, torch; print("stand-in:", sys.executable, sys.version.split()[0], "torch", torch.__version__)'
stage_done

stage "build $IMAGE from the Dockerfile"
run podman build --pull=never --network host -f "$ROOT/Dockerfile" -t "$IMAGE" "$ROOT"
podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{ printf "image size %.2f GB\n", $1 / 1e9 }'
stage_done

stage "input tree"
if [[ -n ${SMOKE_INPUT:-} ]]; then
    INPUT=$(cd "$SMOKE_INPUT" && pwd)
    echo "using $INPUT"
else
    INPUT=$WORK/input
    rm -rf "$INPUT"
    run "$GENRE" synth --out "$INPUT" --layout validation
fi
echo "$(find "$INPUT" -name '*_kus_*.mat' | wc -l) undersampled files"
stage_done

stage "run the image as the harness does${METHOD:+ (GENRE_METHOD=$METHOD)}"
OUTPUT=$WORK/output
rm -rf "$OUTPUT"
mkdir -p "$OUTPUT"
env_args=()
[[ -z $METHOD ]] || env_args+=(-e "GENRE_METHOD=$METHOD")
[[ $OUTPUT_MODE == full ]] || env_args+=(-e "GENRE_OUTPUT_MODE=$OUTPUT_MODE")
run podman run --rm --network none --shm-size=32g -v "$INPUT":/input:ro -v "$OUTPUT":/output "${env_args[@]}" "$IMAGE"
stage_done

stage "validate the output tree"
run "$GENRE" validate-submission "$OUTPUT" --input "$INPUT" --mode test --output-mode "$OUTPUT_MODE"
stage_done

stage "score the output tree"
# The test scorer: it is the one that ranks the container's outputs.
run "$GENRE" evaluate --pred "$OUTPUT" --gt "$INPUT" --output-mode "$OUTPUT_MODE" --grader test --out "$WORK/evaluation"
stage_done

echo
echo "== timings"
printf '%s\n' "${TIMINGS[@]}"
echo "total ${SECONDS}s; container smoke passed"
