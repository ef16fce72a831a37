"""Parsing the Idempotency-Key header: the Structured Field string form and the bare form."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.problems import InvalidIdempotencyKey
from app.votes.idempotency import idempotency_key_from, parse_sf_string

KEY = "0b6f2b8e-9d43-4e39-8f2a-3c4d5e6f7a8b"


def test_quoted_key_is_accepted():
    assert idempotency_key_from(f'"{KEY}"') == KEY


def test_bare_key_is_accepted():
    assert idempotency_key_from(KEY) == KEY


@pytest.mark.parametrize("header", [None, "", '""', f'"{KEY.upper()}"', f'"{KEY}', f'"{KEY}"x', "abc", ":Zm9v:"])
def test_bad_keys_are_refused(header):
    with pytest.raises(InvalidIdempotencyKey):
        idempotency_key_from(header)


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E)))
def test_sf_string_round_trip(text):
    serialized = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    assert parse_sf_string(serialized) == text


@pytest.mark.parametrize("header", ['"a\\b"', '"tab\there"', '"é"'])
def test_sf_string_rejects_what_rfc_8941_forbids(header):
    with pytest.raises(ValueError, match=r".+"):
        parse_sf_string(header)
