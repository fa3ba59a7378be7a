"""canonical_value: the already-canonical fast path must agree with the full check on every input."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from takeback.signals.types import SignalType
from takeback.signals.validate import InvalidSignal, canonical_value

_TYPES = [t for t in SignalType if t.hex_length is not None]


def _reference(kind: SignalType, value: str) -> str | None:
    """What a valid value canonicalises to, by the rule alone (strip, lower, right length, hex digits only)."""
    text = value.strip().lower()
    if len(text) != kind.hex_length or not set(text) <= set(string.hexdigits.lower()):
        return None
    return text


@given(
    kind=st.sampled_from(_TYPES),
    body=st.text(alphabet=string.hexdigits + " g\n\t", min_size=30, max_size=66),
    spelled=st.sampled_from(["same", "upper", "padded"]),
)
def test_canonical_value_matches_the_rule(kind: SignalType, body: str, spelled: str) -> None:
    name = {"same": kind.value, "upper": kind.value.upper(), "padded": f" {kind.value} "}[spelled]
    expected = _reference(kind, body)
    if expected is None:
        with pytest.raises(InvalidSignal):
            canonical_value(name, body)
    else:
        assert canonical_value(name, body) == (kind, expected)


@pytest.mark.parametrize(
    ("value", "code"),
    [("ab" * 31, "wrong_length"), ("g" * 64, "invalid_hex"), ("AB" * 32 + "\n", None), (b"ab" * 32, "invalid_hex")],
)
def test_pdq_spellings(value: object, code: str | None) -> None:
    if code is None:
        assert canonical_value("pdq", value)[1] == "ab" * 32  # type: ignore[arg-type]
    else:
        with pytest.raises(InvalidSignal) as caught:
            canonical_value("pdq", value)  # type: ignore[arg-type]
        assert caught.value.code == code


def test_unknown_type_named() -> None:
    with pytest.raises(InvalidSignal) as caught:
        canonical_value("pdqx", "ab" * 32)
    assert caught.value.code == "unknown_signal_type"
