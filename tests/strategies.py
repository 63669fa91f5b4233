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


def gateway_fields(*extra: str) -> st.SearchStrategy[str]:
    """A field name of some send request, as the gateway spells it (taken from the
    request models themselves), or one of ``extra``."""
    from dispatcher.gateway import CLOUD_KINDS, QR_KINDS

    names = {
        field.alias or name
        for kinds in (CLOUD_KINDS, QR_KINDS)
        for model in kinds.values()
        for name, field in model.model_fields.items()
    }
    return st.sampled_from(sorted(names | set(extra)))
