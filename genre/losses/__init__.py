"""Training losses of GENRE-CMR: fidelity, EAR, SDA, adversarial, and CoV weighting (METHOD.md, "Losses")."""

from genre.losses.adversarial import discriminator_loss, generator_loss
from genre.losses.cov_weighting import CoVWeighting
from genre.losses.ear import TAU_REL, ear_loss, edge_magnitude, edge_mask
from genre.losses.fidelity import FidelityLoss, fidelity_loss, magnitude_mse, wrapped_phase_mse
from genre.losses.sda import Gaussian, SDABank, SDAConfig, fit_gaussian, kl_divergence, symmetric_kl
from genre.losses.ssim import image_range, ssim, ssim_loss

__all__ = [
    "CoVWeighting",
    "FidelityLoss",
    "Gaussian",
    "SDABank",
    "SDAConfig",
    "TAU_REL",
    "discriminator_loss",
    "ear_loss",
    "edge_magnitude",
    "edge_mask",
    "fidelity_loss",
    "fit_gaussian",
    "generator_loss",
    "image_range",
    "kl_divergence",
    "magnitude_mse",
    "ssim",
    "ssim_loss",
    "symmetric_kl",
    "wrapped_phase_mse",
]
