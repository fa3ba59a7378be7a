"""The C passes of video frames (`_pdq_frame.c`) against the numpy passes they stand in for."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
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
def test_c_pass_gives_the_numpy_pass(height: int, width: int, pad: int, smooth: bool, limited: bool, seed: int) -> None:
    plane = _frame(height, width, seed, pad)
    native = pdq_fast.PlaneHasher(height, width, smooth)
    numpy_pass = _numpy_only(pdq_fast.PlaneHasher(height, width, smooth))
    ours, theirs = native.hash(plane, limited), numpy_pass.hash(plane, limited)
    np.testing.assert_allclose(native._partial, numpy_pass._partial, rtol=1e-5, atol=1e-3)
    if native._row_taps is not None:  # planes a few pixels high go through numpy
        # The row pass: the 64 x 64 block before the DCT, against numpy's dense product over the same columns.
        np.testing.assert_allclose(native._block, native._rows @ native._partial, rtol=1e-5, atol=1e-3)
    assert pdq.hamming(ours.hex, theirs.hex) <= 1
    assert abs(ours.quality - theirs.quality) <= 1
    own, mirrored = native.hash_and_mirror(plane, limited)
    assert own == ours
    _, their_mirrored = numpy_pass.hash_and_mirror(plane, limited)
    assert pdq.hamming(mirrored.hex, their_mirrored.hex) <= 1


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


@pytest.mark.parametrize(
    "change",
    ["plane_dtype", "plane_1d", "starts_short", "starts_dtype", "start_outside", "weights_odd", "out_small"],
)
def test_bad_arguments_raise_value_error(change: str) -> None:
    from takeback.signals import _pdq_frame  # type: ignore[attr-defined]

    plane = _frame(80, 200, 2, 0)
    taps = pdq_fast._taps(pdq_fast.full_operator(200))
    assert taps is not None
    args = {"plane": plane, "starts": taps.starts, "weights": taps.weights, "out": np.empty((80, 64), np.float32)}
    bad = {
        "plane_dtype": ("plane", plane.astype(np.uint16)),
        "plane_1d": ("plane", plane.ravel()),
        "starts_short": ("starts", taps.starts[:63].copy()),
        "starts_dtype": ("starts", taps.starts.astype(np.int64)),
        "start_outside": ("starts", np.full(64, 200 - taps.weights.shape[1] + 1, np.int32)),  # one pixel over
        "weights_odd": ("weights", np.zeros((64, 3), np.float32)),
        "out_small": ("out", np.empty((79, 64), np.float32)),
    }
    name, value = bad[change]
    args[name] = value
    with pytest.raises(ValueError):
        _pdq_frame.columns(args["plane"], args["starts"], args["weights"], args["out"])
    _pdq_frame.columns(plane, taps.starts, taps.weights, np.empty((80, 64), np.float32))  # the good call works


@pytest.mark.parametrize("change", ["partial_ragged", "partial_dtype", "start_outside", "weights_empty", "out_small"])
def test_bad_arguments_to_the_row_pass_raise_value_error(change: str) -> None:
    from takeback.signals import _pdq_frame  # type: ignore[attr-defined]

    partial = np.random.default_rng(3).random((90, 64), dtype=np.float32)
    taps = pdq_fast._taps(pdq_fast.full_operator(90))
    assert taps is not None
    args = {"partial": partial, "starts": taps.starts, "weights": taps.weights, "out": np.empty((64, 64), np.float32)}
    bad = {
        "partial_ragged": ("partial", np.zeros((90, 63), np.float32)),
        "partial_dtype": ("partial", partial.astype(np.float64)),
        "start_outside": ("starts", np.full(64, 90 - taps.weights.shape[1] + 1, np.int32)),  # one row over
        "weights_empty": ("weights", np.zeros((64, 0), np.float32)),
        "out_small": ("out", np.empty((64, 63), np.float32)),
    }
    name, value = bad[change]
    args[name] = value
    with pytest.raises(ValueError):
        _pdq_frame.rows(args["partial"], args["starts"], args["weights"], args["out"])
    out = np.empty((64, 64), np.float32)
    _pdq_frame.rows(partial, taps.starts, taps.weights, out)  # the good call works, and is the dense product
    np.testing.assert_allclose(out, pdq_fast.full_operator(90).astype(np.float32) @ partial, rtol=1e-5, atol=1e-5)
