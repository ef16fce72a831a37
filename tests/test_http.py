"""If-None-Match as RFC 9110 §13.1.2 has it: a list of entity tags, weak comparison, or `*`."""

from __future__ import annotations

import pytest

from app.edge.http import none_match

ETAG = '"poll.12"'


@pytest.mark.parametrize(
    "header",
    [
        '"poll.12"',
        'W/"poll.12"',  # weak comparison: W/ is ignored
        '"poll.11", "poll.12"',
        '"a,b" ,W/"poll.12"',  # a comma inside a tag is part of the tag
        ' , "poll.12" ,',  # empty list members are allowed
        "*",
    ],
)
def test_if_none_match_naming_the_tag_or_star_matches(header):
    assert none_match(header, ETAG)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        '"poll.1"',
        '"poll.120"',
        '"poll.12"junk',  # malformed: matches nothing rather than a substring
        "poll.12",  # unquoted
        '"poll.11" "poll.12"',  # members must be separated by commas
    ],
)
def test_if_none_match_not_naming_the_tag_does_not_match(header):
    assert not none_match(header, ETAG)


def test_a_weak_etag_of_the_service_matches_its_strong_form():
    assert none_match('"poll.12"', 'W/"poll.12"')
