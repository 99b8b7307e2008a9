"""Score weights files on the same fixed simulated samples: the criterion for choosing which weights ship.

Each training run validates on its own fixed samples (drawn from its seed), so two runs'
validation scores do not compare. This draws one set (a seed no training run validates on, by
default) and scores every weights file given on it, through the trainer's validation
(:func:`genre.train.validation.validate`: ``Generator.reconstruct``, organizer metrics). The
samples come from the training distribution (:mod:`genre.data.simulation`), never from the
held-out families of the generalization benchmark, so choosing by this score does not tune to
those families.

    python -m benchmarks.simulated WEIGHTS [WEIGHTS ...] [--samples 96] [--seed 500] [--ny 48:112] [--nx 48:128] [--coils 4:12]

``--ny``/``--nx``/``--coils`` draw matrices and coil counts from other ranges than the default
simulation's, as ``genre train --sim-ny/--sim-nx/--sim-coils`` do.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from genre.data.simulation import SimulatedDataset, SimulationConfig
from genre.train.distributed import DistContext
from genre.train.validation import validate
from genre.weights_file import load_generator


def _range(text: str) -> tuple[int, ...]:
    """``MIN:MAX`` as genre train's --sim-* flags take it; SimulationConfig checks the values."""
    return tuple(int(v) for v in text.split(":"))


#: The accelerations the shipped weights' runs train and validate on.
ACCELERATIONS = (4, 8, 12, 16, 20, 24)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights", type=Path, nargs="+", help="weights files (.safetensors with their .json sidecars)")
    parser.add_argument("--samples", type=int, default=96, help="fixed simulated samples (default 96)")
    parser.add_argument("--seed", type=int, default=500, help="their seed (default 500; runs validate on seed + 1 of theirs)")
    parser.add_argument("--ny", type=_range, default=SimulationConfig().ny, metavar="MIN:MAX", help="phase encodes")
    parser.add_argument("--nx", type=_range, default=SimulationConfig().nx, metavar="MIN:MAX", help="readout points")
    parser.add_argument("--coils", type=_range, default=SimulationConfig().coils, metavar="MIN:MAX", help="coil counts")
    args = parser.parse_args(argv)
    config = SimulationConfig(ny=args.ny, nx=args.nx, coils=args.coils)
    torch.set_grad_enabled(False)
    ctx = DistContext(0, 1, torch.device("cpu"))
    print(f"{args.samples} simulated samples, seed {args.seed}, R {ACCELERATIONS}, ny {config.ny}, nx {config.nx}, coils {config.coils}")
    for path in args.weights:
        model = load_generator(path, torch.device("cpu"))
        dataset = SimulatedDataset(args.samples, model.config.adjacent, ACCELERATIONS, args.seed, config, fixed=True)
        result = validate(model, {"simulated": dataset}, ctx, None, epoch=0)["simulated"]
        print(f"{path}: SSIM {result['ssim']:.4f} PSNR {result['psnr']:.2f} NMSE {result['nmse']:.4f} "
              f"(zero-filled SSIM {result['zf_ssim']:.4f} PSNR {result['zf_psnr']:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
