"""The generator (genre.models.generator): cascades, data consistency, residual path, scale, checkpointing."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from genre.models.config import GeneratorConfig, preset
from genre.models.generator import Generator, grown_state
from conftest import kt_mask

KY, KX = 37, 51  # odd on both axes, not a multiple of 2**depth
COILS, BATCH = 3, 2


def _problem(config: GeneratorConfig, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    adj = config.adjacent
    mask = kt_mask(adj, KY, KX).expand(BATCH, adj, KY, KX).clone()
    kspace = torch.randn(BATCH, adj, COILS, KY, KX, dtype=torch.complex64, generator=g)
    return kspace * mask.unsqueeze(2), mask


def _generator(seed: int = 0, **changes) -> Generator:
    torch.manual_seed(seed)
    return Generator(replace(preset("tiny"), **changes)).eval()


@pytest.mark.parametrize("update", ["literal", "varnet"])
@pytest.mark.parametrize("residual", [True, False])
def test_generator_shapes_on_odd_sizes(update, residual):
    model = _generator(update=update, residual=residual)
    kspace, mask = _problem(model.config)
    with torch.no_grad():
        out = model(kspace, mask)
    n_feat0 = model.config.unet.n_feat0
    assert len(out.kspace) == len(out.features) == model.config.cascades
    for k, feat in zip(out.kspace, out.features):
        assert k.shape == (BATCH, COILS, KY, KX) and k.dtype == torch.complex64
        assert feat.shape == (BATCH, n_feat0, KY, KX) and feat.dtype == torch.float32
    assert out.sens_maps.shape == (BATCH, COILS, KY, KX)
    image = out.image()
    assert image.shape == (BATCH, KY, KX) and image.dtype == torch.float32
    assert torch.isfinite(image).all()

    with torch.no_grad():
        final = model(kspace, mask, return_intermediate=False)
    assert len(final.kspace) == 1 and final.features == []
    assert torch.allclose(final.kspace[0], out.kspace[-1])


@pytest.mark.parametrize("update", ["literal", "varnet"])
@pytest.mark.parametrize("residual", [True, False])
def test_data_consistency_keeps_measured_samples(update, residual):
    model = _generator(update=update, residual=residual)
    kspace, mask = _problem(model.config)
    # The network term of the last cascade is forced to zero, the earlier ones fill unmeasured
    # k-space. In the literal form with the residual path that term is the carried sum of all
    # APU outputs, so there every APU is silenced.
    silenced = model.cascades if update == "literal" and residual else model.cascades[-1:]
    for cascade in silenced:
        cascade.apu.register_forward_hook(lambda module, args, out: (torch.zeros_like(out[0]), out[1]))
    with torch.no_grad():
        final = model(kspace, mask).kspace[-1]
    centre = model.config.adjacent // 2
    measured = mask[:, centre].unsqueeze(1).expand_as(final).bool()
    assert model.cascades[-1].eta.item() == 1.0
    assert torch.allclose(final[measured], kspace[:, centre][measured], atol=1e-5)
    if len(silenced) < len(model.cascades):
        assert final[~measured].abs().max() > 1e-3


@pytest.mark.parametrize("update", ["literal", "varnet"])
def test_residual_switch_changes_the_computation(update):
    with_residual = _generator(update=update, residual=True)
    without = _generator(update=update, residual=False)
    without.load_state_dict(with_residual.state_dict())  # the switch adds no weights
    kspace, mask = _problem(with_residual.config)
    with torch.no_grad():
        a, b = with_residual(kspace, mask), without(kspace, mask)
    # The first cascade has no past to carry; the second differs.
    assert torch.allclose(a.kspace[0], b.kspace[0])
    assert not torch.allclose(a.kspace[1], b.kspace[1], atol=1e-4)


def test_generator_is_scale_equivariant():
    model = _generator()
    kspace, mask = _problem(model.config)
    with torch.no_grad():
        image = model(kspace, mask).image()
        scaled = model(kspace * 1000.0, mask).image()
    assert torch.allclose(scaled, image * 1000.0, rtol=1e-3, atol=1e-3)


def test_activation_checkpointing_gives_the_same_gradients():
    plain = _generator().train()
    checkpointed = _generator(checkpointing=True).train()
    checkpointed.load_state_dict(plain.state_dict())
    kspace, mask = _problem(plain.config)
    grads = []
    for model in (plain, checkpointed):
        model.zero_grad()
        model(kspace, mask).image().sum().backward()
        grads.append(model.cascades[0].apu.feat_extract.weight.grad.clone())
    assert torch.allclose(grads[0], grads[1], rtol=1e-4, atol=1e-5)


def test_a_generator_grown_by_cascades_starts_near_the_shorter_one():
    """grown_state keeps the trained cascades and appends ones that barely change the output.

    Appending fresh cascades as they are would change the output as much as an untrained
    network; the zeroed output convolution and step leave only the APU's mean term.
    """
    short = _generator(seed=1)
    kspace, mask = _problem(short.config, seed=2)
    long = _generator(seed=3, cascades=4)
    state = grown_state(long, short.state_dict())
    for key, value in short.state_dict().items():
        assert torch.equal(state[key], value)
    for index in (2, 3):
        assert float(state[f"cascades.{index}.eta"]) == 0.0
        assert not state[f"cascades.{index}.apu.conv_last.weight"].any()
        assert torch.equal(state[f"cascades.{index}.apu.feat_extract.weight"],
                           long.state_dict()[f"cascades.{index}.apu.feat_extract.weight"])
    with torch.no_grad():
        reference = short.reconstruct(kspace, mask)
        fresh = long.reconstruct(kspace, mask)
        long.load_state_dict(state)
        grown = long.reconstruct(kspace, mask)
    assert (grown - reference).norm() < 0.1 * (fresh - reference).norm()
    assert (grown - reference).norm() < 0.05 * reference.norm()


def test_grown_state_refuses_states_it_cannot_complete():
    short, long = _generator(), _generator(cascades=3)
    assert grown_state(short, short.state_dict()).keys() == short.state_dict().keys()
    with pytest.raises(ValueError, match="lacks entries other than whole appended cascades"):
        grown_state(long, {k: v for k, v in short.state_dict().items() if not k.startswith("sensitivity.")})
    with pytest.raises(ValueError, match="entries this generator lacks"):
        grown_state(short, long.state_dict())


def test_generator_rejects_wrong_layout():
    model = _generator()
    kspace, mask = _problem(model.config)
    with pytest.raises(ValueError, match="kspace must be complex"):
        model(kspace[:, :3], mask[:, :3])
    with pytest.raises(ValueError, match="mask must be"):
        model(kspace, mask[:, :, :-1])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_bf16_autocast_on_cuda_stays_close_to_fp32():
    fp32 = _generator(bf16=False).cuda()
    bf16 = _generator(bf16=True).cuda()
    kspace, mask = _problem(fp32.config)
    kspace, mask = kspace.cuda(), mask.cuda()
    with torch.no_grad():
        reference = fp32(kspace, mask).image()
        out = bf16(kspace, mask)
    assert out.kspace[-1].dtype == torch.complex64
    image = out.image()
    assert torch.isfinite(image).all()
    assert (image - reference).norm() / reference.norm() < 0.05
