"""Sensitivity-map estimation (genre.models.sensitivity)."""

from __future__ import annotations

import torch

from genre.kspace import acs_block, rss
from genre.models.config import preset
from genre.models.sensitivity import SensitivityModel
from conftest import kt_mask

KY, KX = 37, 51
COILS, BATCH = 3, 2


def test_sensitivity_maps_have_unit_rss_and_see_only_the_acs_block():
    torch.manual_seed(0)
    model = SensitivityModel(preset("tiny").sensitivity).eval()
    mask = kt_mask(2, KY, KX)[:1].expand(BATCH, KY, KX)
    kspace = torch.randn(BATCH, COILS, KY, KX, dtype=torch.complex64) * mask.unsqueeze(1)
    with torch.no_grad():
        maps = model(kspace, mask)
        assert maps.shape == (BATCH, COILS, KY, KX) and maps.dtype == torch.complex64
        norm = rss(maps)
        assert torch.allclose(norm[norm > 0], torch.ones(()), atol=1e-5)

        # Samples outside the (at most num_acs lines) calibration block do not matter.
        block = acs_block(mask[0])
        outside = torch.ones(KY, KX, dtype=torch.bool)
        outside[block] = False
        changed = kspace + torch.randn_like(kspace) * outside * mask.unsqueeze(1)
        assert torch.allclose(model(changed, mask), maps, atol=1e-6)
