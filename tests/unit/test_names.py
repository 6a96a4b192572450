"""A customer's names when the IdP does not send both: what a shopper types is checked
(:func:`entered_name`), and where no one can be asked (SCIM) :func:`fallback_name` gives a
name that reads as one, never a placeholder."""

from __future__ import annotations

import pytest

from broker.names import (
    MAX_NAME_LENGTH,
    NameInvalid,
    clean,
    entered_name,
    fallback_name,
    has_full_name,
)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # SCIM name.givenName / name.familyName, as given.
        ({"given": "Jane", "family": "Doe"}, ("Jane", "Doe")),
        # name.formatted, else displayName, split at the last space.
        ({"formatted": "Mary Ann Smith"}, ("Mary Ann", "Smith")),
        ({"display": "Jane  van Dijk"}, ("Jane van", "Dijk")),
        ({"formatted": "Cher", "display": "Jane Doe"}, ("Jane", "Doe")),
        # The e-mail's local part, split at . _ - and capitalised; a +tag is not a name.
        ({}, ("Jane", "Doe")),
        ({"email": "mary_ann-smith@x.example"}, ("Mary Ann", "Smith")),
        ({"email": "JANE.DOE+shop@x.example"}, ("Jane", "Doe")),
        # One word: the first name, the domain's first label the last.
        ({"email": "jane@acme.com"}, ("Jane", "Acme")),
        ({"email": "x9@mail.acme.com", "display": "Cher"}, ("Cher", "Mail")),
        # A part that is there is kept; the other comes from the next source.
        ({"given": "Janet", "email": "jane.doe@x.example"}, ("Janet", "Doe")),
        ({"given": "Jane", "email": "jane@acme.com"}, ("Jane", "Acme")),
        ({"family": "Doe", "email": "jd@acme.com"}, ("Jd", "Doe")),
        # Whitespace is not a name.
        ({"given": "  ", "family": "\t", "email": "jane.doe@x.example"}, ("Jane", "Doe")),
    ],
)
def test_the_fallback_reads_as_a_name(values: dict[str, str], expected: tuple[str, str]) -> None:
    arguments = {"email": "jane.doe@x.example", **values}
    assert fallback_name(**arguments) == expected


@pytest.mark.parametrize(
    "email", ["jane.doe@x.example", "j@acme.com", "-@-", "...@x", None, "no-at-sign"]
)
def test_the_fallback_is_never_empty_or_a_dash(email: str | None) -> None:
    first, last = fallback_name(email=email)
    assert first
    assert last
    assert "-" not in (first, last)
    assert first.strip() == first
    assert last.strip() == last


def test_the_fallback_keeps_within_bigcommerces_limit() -> None:
    first, last = fallback_name(email="a@b.example", given="A" * 300, family="B" * 300)
    assert (len(first), len(last)) == (MAX_NAME_LENGTH, MAX_NAME_LENGTH)


def test_what_the_shopper_types_is_cleaned_or_refused() -> None:
    assert entered_name("  Jane \t Marie\n") == "Jane Marie"
    assert entered_name("Zoë\x00") == "Zoë"
    assert entered_name("x" * MAX_NAME_LENGTH) == "x" * MAX_NAME_LENGTH
    for blank in ("", "   ", "\n\t", "\x00", None):
        with pytest.raises(NameInvalid) as missing:
            entered_name(blank)
        assert missing.value.reason == "missing"
    with pytest.raises(NameInvalid) as long:
        entered_name("x" * (MAX_NAME_LENGTH + 1))
    assert long.value.reason == "too_long"


def test_a_full_name_needs_both_parts() -> None:
    assert has_full_name("Jane", "Doe")
    assert not has_full_name("Jane", None)
    assert not has_full_name(None, "Doe")
    assert not has_full_name("Jane", "  ")
    assert clean(42) is None
