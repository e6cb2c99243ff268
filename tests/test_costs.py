"""Tests for the HILL / S-UNIWARD / WOW cost maps."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
from scipy.signal import convolve2d
from scipy.stats import pearsonr, spearmanr

from stegshield.stego.costs import COSTS, MAX_COST
from stegshield.stego.costs._common import DB8_DEC_HI, DB8_DEC_LO
from stegshield.stego.costs.hill import hill
from stegshield.stego.costs.suniward import suniward
from stegshield.stego.costs.wow import wow


def _test_image(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """Smooth gradient on the left half, noisy texture on the right half, flat patch."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = 40.0 + 0.8 * xx + 0.4 * yy
    img[:, w // 2 :] += rng.normal(0.0, 25.0, (h, w - w // 2))
    img[h // 2 :, : w // 4] = 100.0
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


IMG = _test_image()


def test_registry() -> None:
    assert set(COSTS) == {"hill", "suniward", "wow"}
    assert COSTS["hill"] is hill
    # S-UNIWARD and WOW load numba on first call only; the registry entry gives the same map
    for name, fn in (("suniward", suniward), ("wow", wow)):
        assert np.array_equal(COSTS[name](IMG), fn(IMG))


def test_hiding_with_hill_never_imports_numba() -> None:
    """HILL and the STC Viterbi pass are C: a plain ``hide`` pays no JIT start-up."""
    import subprocess
    import sys

    code = ("import sys, numpy as np; from stegshield.stego.embed import hide_array; "
            "from stegshield.crypto.container import Payload; "
            "from stegshield.crypto.kdf import TEST_KDF; "
            "x = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8); "
            "hide_array(x, 'L', Payload(b'hi'), b'pw', kdf=TEST_KDF); "
            "print('numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", sorted(COSTS))
def test_shape_finite_positive(name: str) -> None:
    rho = COSTS[name](IMG)
    assert rho.shape == IMG.shape
    assert rho.dtype == np.float64
    assert np.isfinite(rho).all()
    assert (rho > 0).all()
    assert (rho <= MAX_COST).all()


@pytest.mark.parametrize("name", sorted(COSTS))
def test_texture_cheaper_than_smooth(name: str) -> None:
    rho = COSTS[name](IMG)
    h, w = IMG.shape
    smooth = rho[8 : h // 2 - 8, 8 : w // 2 - 8]
    texture = rho[8:-8, w // 2 + 8 : -8]
    flat = rho[h // 2 + 8 : -8, 8 : w // 4 - 8]
    assert np.median(texture) < 0.2 * np.median(smooth)
    assert np.median(smooth) < np.median(flat)


@pytest.mark.parametrize("name", sorted(COSTS))
def test_dtype_independent(name: str) -> None:
    a = COSTS[name](IMG)
    b = COSTS[name](IMG.astype(np.float64))
    np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize("name", sorted(COSTS))
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (17, 2), (40, 33)])
def test_small_images(name: str, shape: tuple[int, int]) -> None:
    x = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    rho = COSTS[name](x)
    assert rho.shape == shape
    assert np.isfinite(rho).all()
    assert (rho > 0).all()


@pytest.mark.parametrize("name", sorted(COSTS))
def test_rejects_bad_input(name: str) -> None:
    with pytest.raises(ValueError):
        COSTS[name](np.zeros((4, 4, 3), dtype=np.uint8))
    with pytest.raises(ValueError):
        COSTS[name](np.full((4, 4), np.nan))


@pytest.mark.parametrize("name", sorted(COSTS))
def test_flat_image_is_expensive_but_finite(name: str) -> None:
    rho = COSTS[name](np.full((32, 32), 77, dtype=np.uint8))
    assert np.isfinite(rho).all()
    # S-UNIWARD costs are bounded by sum |K| / sigma; HILL and WOW blow up (then clip).
    assert rho.min() >= COSTS[name](IMG).max() * (1 - 1e-6)
    if name != "suniward":
        assert rho.min() > 1e5


def test_hill_matches_ndimage_reference() -> None:
    """Direct float64 transcription of the paper's formula, borders included."""
    x = IMG.astype(np.float64)
    kb = np.array([[-1, 2, -1], [2, -4, 2], [-1, 2, -1]], dtype=np.float64) / 4
    r = np.abs(ndi.correlate(x, kb, mode="reflect"))
    r = ndi.uniform_filter(r, 3, mode="reflect")
    ref = ndi.uniform_filter(1 / np.maximum(r, np.finfo(np.float32).eps), 15, mode="reflect")
    np.testing.assert_allclose(hill(IMG), ref, rtol=1e-4)


def test_db8_filters() -> None:
    lo, hi = DB8_DEC_LO, DB8_DEC_HI
    assert lo.size == hi.size == 16
    assert np.isclose(lo.sum(), np.sqrt(2))
    assert np.isclose(hi.sum(), 0, atol=1e-12)
    for shift in range(0, 16, 2):  # orthonormality of the even shifts
        expect = 1.0 if shift == 0 else 0.0
        assert np.isclose(np.dot(lo[shift:], lo[: 16 - shift]), expect, atol=1e-12)
        assert np.isclose(np.dot(hi[shift:], hi[: 16 - shift]), expect, atol=1e-12)
        assert np.isclose(np.dot(lo[shift:], hi[: 16 - shift]), 0, atol=1e-12)
    k = np.arange(16, dtype=np.float64)
    for p in range(8):  # 8 vanishing moments of the high-pass filter
        assert abs(np.dot(hi, (k / 15) ** p)) < 1e-9


def _brute_force(x: np.ndarray, i: int, j: int) -> tuple[float, float]:
    """S-UNIWARD and WOW costs of pixel (i, j) straight from the papers' definitions."""
    ks = [np.outer(DB8_DEC_LO, DB8_DEC_HI), np.outer(DB8_DEC_HI, DB8_DEC_LO)]
    ks.append(np.outer(DB8_DEC_HI, DB8_DEC_HI))
    e = np.zeros_like(x)
    e[i, j] = 1.0
    uni, inv_xi = 0.0, 0.0
    for k in ks:
        w0 = convolve2d(x, k, mode="full")
        dw = np.abs(convolve2d(x + e, k, mode="full") - w0)
        uni += float((dw / (1.0 + np.abs(w0))).sum())
        inv_xi += 1.0 / float((dw * np.abs(w0)).sum())
    return uni, inv_xi


@pytest.mark.parametrize("pixel", [(30, 40), (50, 90), (20, 70)])
def test_wavelet_costs_match_definition(pixel: tuple[int, int]) -> None:
    x = IMG.astype(np.float64)
    uni, w = _brute_force(x, *pixel)
    assert np.isclose(suniward(IMG)[pixel], uni, rtol=1e-4)
    assert np.isclose(wow(IMG)[pixel], w, rtol=1e-6)


def _conseal_costs(name: str, x: np.ndarray) -> np.ndarray:
    cl = pytest.importorskip("conseal")
    with cl.tools.Backend.BACKEND_PYTHON:
        if name == "hill":
            return cl.hill._costmap.compute_cost(x)
        if name == "suniward":
            return cl.suniward._costmap.compute_cost(x.astype(np.float64))
        return cl.wow._costmap.compute_cost(x)


@pytest.mark.parametrize("name", sorted(COSTS))
def test_agrees_with_conseal(name: str) -> None:
    ours = COSTS[name](IMG)
    ref = np.asarray(_conseal_costs(name, IMG), dtype=np.float64)
    assert ref.shape == ours.shape
    # Flat areas are clipped differently (conseal keeps 1/eps there); compare the rest.
    keep = np.isfinite(ref) & (ref < 1e9) & (ours < 1e9)
    assert keep.mean() > 0.8
    a, b = np.log(ours[keep]), np.log(ref[keep])
    assert pearsonr(a, b)[0] > 0.999
    assert spearmanr(a, b)[0] > 0.99  # float32 noise reorders near-ties
    # Same normalisation as conseal: the costs agree, not only correlate.
    np.testing.assert_allclose(ours[keep], ref[keep], rtol=1e-3)
