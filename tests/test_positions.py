"""Key-derived positions: a true permutation, key-dependent, spread over the image."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from stegshield.stego.positions import keyed_bits, permuted_indices

KEY = bytes(range(32))


@given(n=st.integers(1, 5000), seed=st.binary(min_size=16, max_size=32))
@settings(max_examples=60, deadline=None)
def test_is_a_permutation(n: int, seed: bytes) -> None:
    p = permuted_indices(seed, n, n)
    assert np.array_equal(np.sort(p), np.arange(n))


def test_prefix_and_offset_are_consistent() -> None:
    full = permuted_indices(KEY, 10_000, 10_000)
    assert np.array_equal(permuted_indices(KEY, 10_000, 300), full[:300])
    assert np.array_equal(permuted_indices(KEY, 10_000, 300, start=500), full[500:800])


def test_key_dependent_and_not_reading_order() -> None:
    n = 100_000
    a = permuted_indices(KEY, n, 1000)
    b = permuted_indices(KEY[::-1], n, 1000)
    assert len(np.intersect1d(a, b)) < 50
    # spread: the first 1000 positions cover all ten horizontal bands of the image
    counts = np.bincount(a * 10 // n, minlength=10)
    assert counts.min() > 60
    assert not np.all(np.diff(a) > 0)


def test_keyed_bits_balanced() -> None:
    bits = keyed_bits(KEY, np.arange(20_000))
    assert 0.47 < bits.mean() < 0.53
