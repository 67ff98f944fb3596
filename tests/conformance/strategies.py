"""Hypothesis strategies both directions of the conformance suite draw from: text without
NUL (PostgreSQL refuses it), exact decimals with NaN and infinities, time zones with odd
offsets, and JSON documents."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=40)
ZONES = [
    dt.UTC,
    ZoneInfo("America/New_York"),
    ZoneInfo("Asia/Kathmandu"),
    ZoneInfo("Pacific/Chatham"),
]
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


def numeric() -> st.SearchStrategy[Decimal]:
    """Exact decimals: up to 60 digits, up to 60 places, NaN and +-Infinity now and then."""
    finite = st.builds(
        lambda digits, places: Decimal(digits).scaleb(-places),
        st.integers(min_value=-(10**60), max_value=10**60),
        st.integers(min_value=0, max_value=60),
    )
    special = st.sampled_from([Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")])
    return st.one_of(finite, finite, finite, special)
