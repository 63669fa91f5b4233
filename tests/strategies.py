"""Hypothesis strategies shared by the property-based tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st


def json_values(
    scalars: st.SearchStrategy[Any], *, max_leaves: int, key_size: int, items: int
) -> st.SearchStrategy[Any]:
    """Arbitrary JSON built from ``scalars``: lists of up to ``items`` values and objects
    of up to 4 keys (each up to ``key_size`` characters), ``max_leaves`` scalars in all."""
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=items)
            | st.dictionaries(st.text(max_size=key_size), children, max_size=4)
        ),
        max_leaves=max_leaves,
    )
