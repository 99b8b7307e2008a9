import numpy as np
import pytest
import torch

from genre.kspace import (
    acs_block,
    center_crop,
    consistent_rss,
    crop_start,
    fft2c,
    ifft2c,
    limit_block,
    normalize_sens,
    readout_to_image,
    readout_to_kspace,
    rss,
    rss_from_kspace,
    sens_expand,
    sens_reduce,
)


def _complex(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.complex(torch.randn(shape, generator=g), torch.randn(shape, generator=g))


@pytest.mark.parametrize("shape", [(7, 9), (8, 8), (3, 5, 11), (2, 4, 201, 33)])
def test_fft2c_matches_numpy_centred_orthonormal(shape):
    x = _complex(shape)
    ref = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x.numpy(), axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    np.testing.assert_allclose(fft2c(x).numpy(), ref, rtol=1e-5, atol=1e-5)
    refi = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(x.numpy(), axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    np.testing.assert_allclose(ifft2c(x).numpy(), refi, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(7, 9), (6, 10)])
def test_ifft2c_inverts_fft2c_and_keeps_energy(shape):
    x = _complex(shape, seed=1)
    torch.testing.assert_close(ifft2c(fft2c(x)), x, rtol=1e-5, atol=1e-5)
    assert torch.allclose(fft2c(x).abs().square().sum(), x.abs().square().sum(), rtol=1e-5)


def test_odd_size_point_stays_at_centre():
    # A constant k-space (a delta at DC after the centred transform) lands on pixel (n//2, m//2);
    # the reverse shift order would move it by one on odd sizes.
    k = torch.zeros(7, 9, dtype=torch.complex64)
    k[3, 4] = 1
    img = ifft2c(k)
    assert torch.allclose(img.abs(), torch.full((7, 9), 1 / np.sqrt(63)), atol=1e-6)
    delta = torch.zeros(7, 9, dtype=torch.complex64)
    delta[3, 4] = 1
    assert torch.allclose(fft2c(delta).abs(), torch.full((7, 9), 1 / np.sqrt(63)), atol=1e-6)
    assert abs(fft2c(delta)[3, 4].item() - 1 / np.sqrt(63)) < 1e-6  # zero phase at the centre


def test_rss_and_rss_from_kspace():
    coils = _complex((4, 5, 6))
    expected = np.sqrt((np.abs(coils.numpy()) ** 2).sum(0))
    np.testing.assert_allclose(rss(coils).numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(rss_from_kspace(fft2c(coils)).numpy(), expected, rtol=1e-4, atol=1e-5)


def test_sense_operator_adjointness():
    x = _complex((2, 9, 11), seed=2)
    y = _complex((2, 4, 9, 11), seed=3)
    maps = normalize_sens(_complex((2, 4, 9, 11), seed=4))
    lhs = (sens_expand(x, maps).conj() * y).sum()
    rhs = (x.conj() * sens_reduce(y, maps)).sum()
    assert torch.allclose(lhs, rhs, rtol=1e-4, atol=1e-4)


def test_normalize_sens_gives_unit_rss():
    maps = normalize_sens(_complex((3, 6, 7, 5), seed=5))
    torch.testing.assert_close(rss(maps), torch.ones(3, 7, 5), rtol=1e-5, atol=1e-5)


def test_center_crop_matlab_rule():
    assert crop_start(448, 149) == 150  # (448-149)//2 would be 149
    assert crop_start(201, 101) == 50
    x = torch.arange(10 * 9).reshape(10, 9)
    out = center_crop(x, (5, 3))
    assert out.shape == (5, 3)
    assert out[0, 0] == x[3, 3]
    with pytest.raises(ValueError):
        crop_start(5, 7)


def _cartesian_mask(ny, nx, acs, step, frames=1):
    mask = torch.zeros(frames, ny, nx)
    mask[:, ::step] = 1
    c = ny // 2
    mask[:, c - acs // 2 : c - acs // 2 + acs] = 1
    return mask


@pytest.mark.parametrize("ny,nx", [(64, 57), (201, 96), (62, 51)])
def test_acs_block_cartesian_full_width(ny, nx):
    mask = _cartesian_mask(ny, nx, acs=20, step=ny)  # ACS only plus line 0
    ky, kx = acs_block(mask)
    assert (ky.stop - ky.start, kx.start, kx.stop) == (20, 0, nx)
    assert ky.start == ny // 2 - 10


def test_acs_block_radial_square_ignores_spokes():
    ny, nx = 65, 80
    mask = torch.zeros(ny, nx)
    mask[ny // 2 - 10 : ny // 2 + 10, nx // 2 - 10 : nx // 2 + 10] = 1
    mask[ny // 2, :] = 1  # a horizontal spoke through the centre
    mask[:, nx // 2] = 1  # a vertical one
    ky, kx = acs_block(mask)
    assert (ky.stop - ky.start, kx.stop - kx.start) == (20, 20)


def test_acs_block_needs_all_frames_and_the_centre():
    mask = _cartesian_mask(40, 30, acs=8, step=40, frames=3)
    mask[1, 40 // 2 + 3] = 0  # one frame misses an ACS line
    ky, _ = acs_block(mask)
    assert ky.stop == 40 // 2 + 3
    with pytest.raises(ValueError, match="centre"):
        acs_block(torch.zeros(10, 10))


def test_limit_block_caps_lines_around_centre():
    block = (slice(22, 42), slice(0, 50))
    ky, kx = limit_block(block, (64, 50), 16)
    assert (ky.start, ky.stop, kx) == (24, 40, slice(0, 50))
    ky, kx = limit_block((slice(22, 42), slice(15, 35)), (64, 50), 16)
    assert (kx.stop - kx.start, ky.stop - ky.start) == (16, 16)
    assert limit_block(block, (64, 50), None) == block


def test_consistent_rss_keeps_measured_lines_and_the_estimate_elsewhere():
    measured, estimate = _complex((2, 3, 8, 6), seed=1), _complex((2, 3, 8, 6), seed=2)
    mask = torch.zeros(2, 8, 6)
    mask[:, ::2] = 1
    got = consistent_rss(measured, estimate, mask)
    assert got.shape == (2, 8, 6)
    expected = torch.where(mask[:, None].bool(), measured, estimate)
    torch.testing.assert_close(got, rss_from_kspace(expected))
    torch.testing.assert_close(consistent_rss(measured, estimate, torch.ones(8, 6)), rss_from_kspace(measured))
    torch.testing.assert_close(consistent_rss(measured, estimate, torch.zeros(8, 6)), rss_from_kspace(estimate))


def test_a_readout_crop_is_the_kspace_of_the_cropped_image():
    image = torch.randn(2, 3, 20, 30, dtype=torch.complex64)
    kspace = fft2c(image)
    assert torch.allclose(readout_to_kspace(readout_to_image(kspace)), kspace, atol=1e-5)
    crop = readout_to_kspace(readout_to_image(kspace)[..., 7:23])
    assert torch.allclose(crop, fft2c(image[..., 7:23]), atol=1e-5)
