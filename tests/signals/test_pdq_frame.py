"""The C passes of video frames (`_pdq_frame.c`) against the numpy passes they stand in for."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from takeback.signals import pdq, pdq_fast

REQUIRE_ENV = "TAKEBACK_REQUIRE_NATIVE"


@pytest.fixture(autouse=True)
def _built() -> None:
    if not pdq_fast.NATIVE_PASSES:
        message = "takeback.signals._pdq_frame is not built (pip install -e . needs a C compiler)"
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"{message} ({REQUIRE_ENV} is set)", pytrace=False)
        pytest.skip(message)


def _frame(height: int, width: int, seed: int, pad: int) -> np.ndarray:
    """A frame-like plane as the decoder hands it over: a view whose rows are `pad` bytes longer than the picture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0 : width + pad]
    plane = np.sin(x / (width / 9.0)) * 80 + np.cos(y / (height / 7.0)) * 60 + 128 + rng.normal(0, 12, x.shape)
    return np.clip(plane, 0, 255).astype(np.uint8)[:, :width]


def _numpy_only(hasher: pdq_fast.PlaneHasher) -> pdq_fast.PlaneHasher:
    hasher._taps = hasher._row_taps = None
    return hasher


@settings(max_examples=60, deadline=None)
@given(
    height=st.integers(min_value=pdq.MIN_HASHABLE_DIM, max_value=700),
    width=st.integers(min_value=pdq.MIN_HASHABLE_DIM, max_value=1300),
    pad=st.sampled_from([0, 1, 32, 64]),
    smooth=st.booleans(),
    limited=st.booleans(),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
@example(height=26, width=1238, pad=0, smooth=False, limited=False, seed=112)  # two bits that nearly tie
def test_c_pass_gives_the_numpy_pass(height: int, width: int, pad: int, smooth: bool, limited: bool, seed: int) -> None:
    plane = _frame(height, width, seed, pad)
    native = pdq_fast.PlaneHasher(height, width, smooth)
    numpy_pass = _numpy_only(pdq_fast.PlaneHasher(height, width, smooth))
    ours, theirs = native.hash(plane, limited), numpy_pass.hash(plane, limited)
    np.testing.assert_allclose(native._partial, numpy_pass._partial, rtol=1e-5, atol=1e-3)
    # The row pass: the 64 x 64 block before the DCT, against numpy's dense product over the same columns.
    np.testing.assert_allclose(_block(native), _block(numpy_pass), rtol=1e-5, atol=1e-3)
    _only_ties_differ(ours, theirs, _block(native), _block(numpy_pass), limited)
    assert abs(ours.quality - theirs.quality) <= 1
    own, mirrored = native.hash_and_mirror(plane, limited)
    assert own == ours
    _, their_mirrored = numpy_pass.hash_and_mirror(plane, limited)
    _only_ties_differ(mirrored, their_mirrored, _block(native), _block(numpy_pass), limited)


def _block(hasher: pdq_fast.PlaneHasher) -> np.ndarray:
    """The 64 x 64 block the last hash was taken from (planes a few pixels high go through numpy's product)."""
    return hasher._block if hasher._row_taps is not None else hasher._rows @ hasher._partial


def _only_ties_differ(
    ours: pdq.PdqHash, theirs: pdq.PdqHash, our_block: np.ndarray, their_block: np.ndarray, limited: bool
) -> None:
    """The two passes sum in different orders, so a bit may differ only where its coefficient lies within that
    rounding of the median (on small planes many coefficients nearly tie); anywhere else is a wrong pass."""
    blocks = [b.astype(np.float64) for b in (our_block, their_block)]
    if limited:
        blocks = [(b - 16.0) * (255.0 / 219.0) for b in blocks]
    a, b = ((pdq_fast.DCT64 @ block @ pdq_fast.DCT64.T).ravel() for block in blocks)
    slack = 2 * float(np.abs(a - b).max()) + 1e-6 * float(np.abs(b).max())
    median = np.partition(b, pdq._MEDIAN_INDEX)[pdq._MEDIAN_INDEX]
    differ = np.flatnonzero(pdq.hex_to_bits(ours.hex) != pdq.hex_to_bits(theirs.hex))
    assert np.all(np.abs(b[differ] - median) <= slack), (differ, b[differ] - median, slack)


def test_a_720p_frame_takes_the_c_pass_and_gives_the_same_hash() -> None:
    plane = _frame(720, 1280, 5, 64)
    native = pdq_fast.PlaneHasher(720, 1280)
    assert native._taps is not None and native._plane is None  # no float copy of the frame is kept
    assert native._row_taps is not None  # and no BLAS call per frame
    assert native.hash(plane, True) == _numpy_only(pdq_fast.PlaneHasher(720, 1280)).hash(plane, True)
    assert native._plane is None


@settings(max_examples=40, deadline=None)
@given(width=st.integers(min_value=pdq.MIN_HASHABLE_DIM, max_value=4000), smooth=st.booleans())
def test_taps_are_the_operator_padded_inside_the_row(width: int, smooth: bool) -> None:
    operator = (pdq_fast.smooth_operator if smooth else pdq_fast.full_operator)(width)
    taps = pdq_fast._taps(operator)
    if taps is None:  # only planes too narrow for the padded taps
        assert width < 8 * pdq_fast._LANES * 4
        return
    count = taps.weights.shape[1]
    assert count % pdq_fast._LANES == 0
    assert taps.starts.min() >= 0 and int(taps.starts.max()) + count <= width
    rebuilt = np.zeros_like(operator)
    for j, start in enumerate(taps.starts):
        rebuilt[j, start : start + count] = taps.weights[j]
    np.testing.assert_allclose(rebuilt, operator, rtol=1e-6, atol=float(np.abs(operator).max()) * 1e-6)


def test_planes_the_c_pass_cannot_read_go_through_numpy() -> None:
    plane = _frame(120, 300, 1, 0)
    native = pdq_fast.PlaneHasher(120, 150)
    expected = _numpy_only(pdq_fast.PlaneHasher(120, 150)).hash(np.ascontiguousarray(plane[:, ::2]))
    assert native.hash(plane[:, ::2]) == expected  # every other pixel: not adjacent in memory
    assert native.hash(plane[:, ::2].astype(np.float32)) == expected


def _arguments(function: str) -> tuple[list[np.ndarray], dict[str, tuple[int, np.ndarray]]]:
    """Good arguments for `_pdq_frame.<function>`, and bad replacements by name: (argument position, value)."""
    source = _frame(80, 200, 2, 0) if function == "columns" else np.random.default_rng(3).random((90, 64), np.float32)
    length = source.shape[1] if function == "columns" else source.shape[0]
    taps = pdq_fast._taps(pdq_fast.full_operator(length))
    assert taps is not None
    out = np.empty((80, 64) if function == "columns" else (64, 64), np.float32)
    over = np.full(64, length - taps.weights.shape[1] + 1, np.int32)  # every output's last tap one past the end
    bad = {
        "starts_short": (1, taps.starts[:63].copy()),
        "starts_dtype": (1, taps.starts.astype(np.int64)),
        "start_outside": (1, over),
        "weights_empty": (2, np.zeros((64, 0), np.float32)),
        "out_small": (3, out[:-1] if function == "columns" else out[:, :-1].copy()),
    }
    if function == "columns":
        bad |= {"source_dtype": (0, source.astype(np.uint16)), "source_1d": (0, source.ravel())}
        bad |= {"weights_odd": (2, np.zeros((64, 3), np.float32))}
    else:
        bad |= {"source_ragged": (0, np.zeros((90, 63), np.float32)), "source_dtype": (0, source.astype(np.float64))}
    return [source, taps.starts, taps.weights, out], bad


_BAD = [(f, name) for f in ("columns", "rows") for name in _arguments(f)[1]]


@pytest.mark.parametrize(("function", "change"), _BAD)
def test_bad_arguments_raise_value_error(function: str, change: str) -> None:
    from takeback.signals import _pdq_frame  # type: ignore[attr-defined]

    good, bad = _arguments(function)
    position, value = bad[change]
    with pytest.raises(ValueError):
        getattr(_pdq_frame, function)(*good[:position], value, *good[position + 1 :])
    getattr(_pdq_frame, function)(*good)  # the good call works


def test_the_row_pass_is_the_dense_product() -> None:
    from takeback.signals import _pdq_frame  # type: ignore[attr-defined]

    (partial, starts, weights, out), _ = _arguments("rows")
    _pdq_frame.rows(partial, starts, weights, out)
    np.testing.assert_allclose(out, pdq_fast.full_operator(90).astype(np.float32) @ partial, rtol=1e-5, atol=1e-5)
