"""The ledger's Redis connection: commands packed by hiredis byte for byte as redis-py
packs them, on a real Redis."""

from __future__ import annotations

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st
from redis._parsers.encoders import Encoder
from redis.connection import PythonRespSerializer

from dispatcher.ledger.connection import _PACKER, connect
from tests.support.stack import make_settings

ARGUMENTS = st.lists(
    st.one_of(
        st.text(alphabet=st.characters(exclude_categories=["Cs"])),  # no lone surrogates
        st.integers(),
        st.floats(allow_nan=False),
        st.binary(),
    ),
    max_size=40,
)


def _redis_py(*args: object) -> bytes:
    encoder = Encoder("utf-8", "strict", False)
    return b"".join(PythonRespSerializer(6000, encoder.encode).pack(*args))


@given(arguments=ARGUMENTS)
def test_a_command_is_packed_as_redis_py_packs_it(arguments: list[object]) -> None:
    command = ("EVALSHA", "f" * 40, *arguments)
    assert b"".join(_PACKER.pack(*command)) == _redis_py(*command)


def test_what_hiredis_refuses_goes_to_redis_py() -> None:
    assert b"".join(_PACKER.pack("SCRIPT LOAD", "return 1")) == _redis_py(
        "SCRIPT", "LOAD", "return 1"
    )
    with pytest.raises(redis.DataError, match="bool"):
        _PACKER.pack("SET", "k", True)


def test_values_come_back_as_they_went(redis_url: str) -> None:
    client = connect(make_settings(redis_url))
    try:
        client.set("packed:text", "é€😀")
        client.set("packed:float", 1 / 3)
        assert client.get("packed:text") == "é€😀".encode()
        assert float(client.get("packed:float") or 0) == 1 / 3
        assert client.eval("return ARGV[1] + ARGV[2]", 0, 2.5, 10**15) == 10**15 + 2
    finally:
        client.close()
