"""The GENRE-CMR generator (Algorithm 1, lines 1-11): SME, then T unrolled prompt-U-Net cascades with data consistency."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from genre.kspace import rss_from_kspace
from genre.models.config import GeneratorConfig
from genre.models.prompt_unet import PromptUnet, channels_to_complex, complex_to_channels
from genre.models.sensitivity import SensitivityModel


@dataclass
class GeneratorOutput:
    """What one forward pass gives the losses and the reconstructor.

    * ``kspace``: per cascade, the centre frame's k-space ``(batch, coils, ky, kx)`` complex64;
      the last entry is the final reconstruction.
    * ``features``: per cascade, the APU's last decoder level ``(batch, n_feat0, ky, kx)``
      float32 (with the carried sum in the ``varnet`` form with the residual path): the SDA
      loss's input.
    * ``sens_maps``: ``(batch, coils, ky, kx)`` complex64, RSS over coils 1.
    """

    kspace: list[torch.Tensor]
    features: list[torch.Tensor]
    sens_maps: torch.Tensor

    def image(self) -> torch.Tensor:
        """RSS magnitude ``(batch, ky, kx)`` float32 of the final centre frame."""
        return rss_from_kspace(self.kspace[-1])


_SPATIAL = (-2, -1)

#: Percentile of the zero-filled RSS image that the network's input is scaled to 1 by.
SCALE_PERCENTILE = 99.5


def input_scale(kspace: torch.Tensor) -> torch.Tensor:
    """Per-sample scale ``(batch,)`` of k-space ``(batch, coils, ky, kx)``: a high percentile of its zero-filled RSS image.

    The generator is scale-equivariant (every U-Net normalises its input, data consistency is
    linear), so the scale only brings the numbers to O(1), where the bf16 range and the
    small floors in the normalisations are immaterial. A percentile rather than the maximum,
    so that one spike or one bright artefact does not set it.
    """
    image = rss_from_kspace(kspace).flatten(1)
    k = max(1, round(image.shape[1] * SCALE_PERCENTILE / 100))
    scale = image.kthvalue(k, dim=1).values
    return torch.where(scale > 0, scale, torch.ones_like(scale))


def to_fft_order(x: torch.Tensor) -> torch.Tensor:
    """Centred ``(..., ky, kx)`` -> FFT order (the zero frequency, or the image centre, at index 0)."""
    return torch.fft.ifftshift(x, dim=_SPATIAL)


def to_centred(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`to_fft_order`."""
    return torch.fft.fftshift(x, dim=_SPATIAL)


def reduce_fft_order(kspace: torch.Tensor, sens: torch.Tensor) -> torch.Tensor:
    """:func:`genre.kspace.sens_reduce` for k-space and maps ``(..., coils, ky, kx)`` in FFT order; the image comes out centred.

    ``sens_reduce(k, s) = sum_c conj(s_c) * fftshift(ifft2(ifftshift(k_c)))``; a shift is a
    permutation of pixels, so it commutes with the product and the coil sum: with ``k`` and
    ``s`` stored in FFT order the only shift left is one on the coil-combined image, a tenth
    of the data for ten coils.
    """
    coil_images = torch.fft.ifft2(kspace, dim=_SPATIAL, norm="ortho")
    return to_centred((sens.conj() * coil_images).sum(dim=-3))


def expand_fft_order(image: torch.Tensor, sens: torch.Tensor) -> torch.Tensor:
    """:func:`genre.kspace.sens_expand` of a centred image ``(..., ky, kx)`` with maps in FFT order; k-space comes out in FFT order."""
    return torch.fft.fft2(sens * to_fft_order(image).unsqueeze(-3), dim=_SPATIAL, norm="ortho")


class Cascade(nn.Module):
    """One unrolled step: coil reduce, APU, residual path, coil expand, soft data consistency.

    Tensors: ``kspace``, ``measured`` ``(batch, adj, coils, ky, kx)`` complex64; ``mask``
    ``(batch, adj, 1, ky, kx)``; ``sens`` ``(batch, 1, coils, ky, kx)``: all four in FFT order
    (:func:`to_fft_order`), so that the coil-sized transforms need no shifts (in the centred
    form a cascade's four coil-sized shifts cost half as much as its two FFTs). ``state`` is the
    residual path ``F(t-1)`` (``None`` on the first cascade, or always without the residual
    path): the summed, centred APU image ``(batch, adj, ky, kx)`` complex in the ``literal``
    form, the summed features ``(batch, n_feat0, ky, kx)`` in the ``varnet`` form.
    """

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        self.literal = config.update == "literal"
        self.residual = config.residual
        self.apu = PromptUnet(2 * config.adjacent, 2 * config.adjacent, config.unet, bf16=config.bf16)
        self.eta = nn.Parameter(torch.tensor(float(config.eta_init)))

    def forward(
        self,
        kspace: torch.Tensor,
        measured: torch.Tensor,
        mask: torch.Tensor,
        sens: torch.Tensor,
        state: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        image = complex_to_channels(reduce_fft_order(kspace, sens))
        # kspace - eta * mask * (kspace - measured), with eta applied to the small mask and the
        # product fused: two passes over the coil-sized k-space instead of four (identical for
        # 0/1 masks; docs/benchmarks.md). The in-place step below is on addcmul's own output,
        # which its backward does not need.
        consistent = torch.addcmul(kspace, self.eta * mask, measured - kspace)
        if self.literal:
            out, features = self.apu(image)
            update = channels_to_complex(out)
            if state is not None:
                update = update + state
            # Paper line 11: the (summed) APU image is added, not subtracted.
            return consistent.add_(expand_fft_order(update, sens)), features, update if self.residual else None
        out, features = self.apu(image, carry=state)
        return consistent.sub_(expand_fft_order(channels_to_complex(out), sens)), features, features if self.residual else None


class Generator(nn.Module):
    """GENRE-CMR generator; see :class:`genre.models.config.GeneratorConfig` for the update forms.

    Never reads files: weights come through :mod:`genre.weights_file`.
    """

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        self.config = config
        self.sensitivity = SensitivityModel(config.sensitivity, bf16=config.bf16)
        self.cascades = nn.ModuleList(Cascade(config) for _ in range(config.cascades))

    def forward(self, kspace: torch.Tensor, mask: torch.Tensor, return_intermediate: bool = True) -> GeneratorOutput:
        """Reconstruct the centre frame of each sample.

        * ``kspace``: measured, zero-filled k-space ``(batch, adj, coils, ky, kx)`` complex64,
          ``adj`` = ``config.adjacent`` frames with the target in the middle.
        * ``mask``: sampling mask ``(batch, adj, ky, kx)`` float of 0/1.
        * ``return_intermediate=False`` keeps only the final k-space and no features (inference).
        """
        self._check_inputs(kspace, mask)
        centre = self.config.adjacent // 2
        sens = self.sensitivity(kspace[:, centre], mask[:, centre])
        # The cascades work in FFT order (see Cascade); only their outputs are shifted back.
        sens_adj = to_fft_order(sens).unsqueeze(1)
        mask_adj = to_fft_order(mask).unsqueeze(2).to(kspace.real.dtype)
        measured = to_fft_order(kspace)
        recompute_activations = self.config.checkpointing and self.training and torch.is_grad_enabled()

        current, state = measured, None
        kspaces, features = [], []
        centre_mask, centre_measured = mask[:, centre].unsqueeze(1).to(kspace.real.dtype), kspace[:, centre]

        def output(k: torch.Tensor) -> torch.Tensor:
            """The centre frame of ``k`` (FFT order) centred, with the measured samples put back if configured."""
            centred = to_centred(k[:, centre])
            if not self.config.measured_out:
                return centred
            return torch.addcmul(centred, centre_mask, centre_measured - centred)

        for cascade in self.cascades:
            if recompute_activations:
                current, feat, state = checkpoint(
                    cascade, current, measured, mask_adj, sens_adj, state, use_reentrant=False
                )
            else:
                current, feat, state = cascade(current, measured, mask_adj, sens_adj, state)
            if return_intermediate:
                # The shift copies, so the list does not keep every cascade's adjacent frames alive.
                kspaces.append(output(current))
                features.append(feat)
        if not return_intermediate:
            kspaces.append(output(current))
        return GeneratorOutput(kspace=kspaces, features=features, sens_maps=sens)

    @torch.no_grad()
    def reconstruct(self, measured: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The one inference path: RSS image ``(batch, ky, kx)`` float32 of each sample's centre frame, in the input's units.

        ``measured`` ``(batch, adj, coils, ky, kx)`` complex64 (zero where not sampled) and
        ``mask`` ``(batch, adj, ky, kx)`` as :meth:`forward` takes them. ``genre predict``, the
        trainer's validation and the benchmarks all come through here, so what validation
        scores is what predict writes.
        """
        return rss_from_kspace(self.reconstruct_kspace(measured, mask))

    def reconstruct_kspace(self, measured: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The final coil k-space ``(batch, coils, ky, kx)`` complex64 of each sample's centre frame, in the input's units.

        Inputs as :meth:`reconstruct`. Each sample is divided by its :func:`input_scale` before
        the network and the k-space multiplied back after. The k-space (not only its RSS image)
        is what a hold-out check scores against acquired samples (:mod:`genre.recon.guard`).
        Gradients flow where they are enabled, because test-time adaptation
        (:mod:`genre.recon.adapt`) trains through this same path; inference callers disable them.
        """
        scale = input_scale(measured[:, self.config.adjacent // 2])
        out = self(measured / scale.view(-1, 1, 1, 1, 1), mask, return_intermediate=False)
        return out.kspace[-1] * scale.view(-1, 1, 1, 1)

    def _check_inputs(self, kspace: torch.Tensor, mask: torch.Tensor) -> None:
        adj = self.config.adjacent
        if not kspace.is_complex() or kspace.ndim != 5 or kspace.shape[1] != adj:
            raise ValueError(
                f"kspace must be complex (batch, {adj}, coils, ky, kx), got {kspace.dtype} {tuple(kspace.shape)}"
            )
        b, _, _, ny, nx = kspace.shape
        if tuple(mask.shape) != (b, adj, ny, nx):
            raise ValueError(f"mask must be (batch, adj, ky, kx) = {(b, adj, ny, nx)}, got {tuple(mask.shape)}")


def grown_state(generator: Generator, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` of a generator with the same configuration but fewer cascades, completed to ``generator``'s.

    The cascades ``state`` lacks are appended after its own, keep ``generator``'s (fresh)
    weights, and start with a zero output convolution and a zero step size: each then changes
    its input only by the constant the APU adds back after its normalisation (the input mean)
    expanded through the maps, a smooth low-frequency term that the measured-sample
    replacement (``measured_out``) mostly removes. Growing an unrolled network this way keeps
    what the shorter one learned instead of restarting it (tests/test_models_generator.py measures
    how close the grown network starts). ``state`` with every cascade is returned as it is.
    """
    own = generator.state_dict()
    missing = sorted(set(own) - set(state))
    unknown = sorted(set(state) - set(own))
    if unknown:
        raise ValueError(f"state has entries this generator lacks: {', '.join(unknown[:3])}")
    given = {int(k.split(".")[1]) for k in state if k.startswith("cascades.")}
    if not missing:
        return dict(state)
    if any(not k.startswith("cascades.") or int(k.split(".")[1]) in given for k in missing):
        raise ValueError(f"state lacks entries other than whole appended cascades: {', '.join(missing[:3])}")
    grown = dict(state)
    for index in range(len(given), len(generator.cascades)):
        prefix = f"cascades.{index}."
        for key, value in own.items():
            if key.startswith(prefix):
                appended = key in (prefix + "eta", prefix + "apu.conv_last.weight")
                grown[key] = torch.zeros_like(value) if appended else value
    return grown
