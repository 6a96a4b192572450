"""A customer's first and last name: BigCommerce requires both, non-empty, at most 255
characters each.

Two ways to get them when the IdP does not send both:

- **a shopper in a browser** (a sign-in that would create their customer) is asked once, on
  the "What's your name?" page; what they type is checked by :func:`entered_name`;
- **no browser** (SCIM provisioning, or any other creation nobody can be asked about) gets
  :func:`fallback_name`: a name that reads like one, never a placeholder such as ``-``.

Pure functions: no I/O, no settings.
"""

from __future__ import annotations

import re
import unicodedata

#: BigCommerce's limit on ``first_name`` and ``last_name``.
MAX_NAME_LENGTH = 255

_LOCAL_SEPARATORS = re.compile(r"[._-]+")


class NameInvalid(ValueError):
    """What the shopper typed cannot be a name: ``reason`` is ``missing`` or ``too_long``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def clean(value: object) -> str | None:
    """``value`` as a name: control characters dropped, runs of whitespace one space, trimmed;
    None when nothing is left (or it is not text)."""
    if not isinstance(value, str):
        return None
    kept = "".join(" " if c.isspace() else c for c in value if unicodedata.category(c) != "Cc")
    words = kept.split()
    return " ".join(words) or None


def entered_name(value: object) -> str:
    """A name the shopper typed, cleaned; :class:`NameInvalid` when blank or over
    :data:`MAX_NAME_LENGTH` characters (never cut: the shopper should see what is stored)."""
    name = clean(value)
    if name is None:
        raise NameInvalid("missing")
    if len(name) > MAX_NAME_LENGTH:
        raise NameInvalid("too_long")
    return name


def has_full_name(first: str | None, last: str | None) -> bool:
    """Whether both names are there (whitespace is not a name)."""
    return clean(first) is not None and clean(last) is not None


def fallback_name(
    *,
    email: str | None,
    given: str | None = None,
    family: str | None = None,
    formatted: str | None = None,
    display: str | None = None,
) -> tuple[str, str]:
    """(first, last) for a customer created with no one to ask, each non-empty and at most
    :data:`MAX_NAME_LENGTH` characters, taking the first of these that gives each part:

    1. ``given`` and ``family`` (SCIM ``name.givenName``/``name.familyName``, the IdP's claims);
    2. ``formatted`` (SCIM ``name.formatted``), then ``display`` (``displayName``), split at
       the last space: ``"Mary Ann Smith"`` is Mary Ann / Smith;
    3. the e-mail's local part (without a ``+tag``) split at ``.``, ``_`` and ``-``, each word
       capitalised, the last word the last name: ``jane.doe@x`` is Jane / Doe;
    4. when a single word is all there is, it is the first name and the last name is the
       e-mail domain's first label, capitalised: ``jane@acme.com`` is Jane / Acme.

    A part found by an earlier rule is kept: ``given="Jane"`` with ``jane.doe@x`` is Jane / Doe.
    """
    first, last = clean(given), clean(family)
    single: str | None = None
    for whole in (formatted, display):
        if first and last:
            break
        head, tail = _split_last(clean(whole))
        if head and tail:
            first, last = first or head, last or tail
        elif head and single is None:
            single = head
    local, domain = _email_parts(email)
    if not (first and last) and local:
        words = [_capitalised(w) for w in _LOCAL_SEPARATORS.split(local) if _wordlike(w)]
        if len(words) >= 2:
            first, last = first or " ".join(words[:-1]), last or words[-1]
        elif words and single is None:
            single = words[0]
    first = first or single
    label = domain.split(".", 1)[0] if domain else None
    label = _capitalised(label) if label and _wordlike(label) else None
    first = first or label or "Customer"
    last = last or label or first
    return first[:MAX_NAME_LENGTH], last[:MAX_NAME_LENGTH]


def _split_last(name: str | None) -> tuple[str | None, str | None]:
    if not name:
        return None, None
    head, _, tail = name.rpartition(" ")
    return (head, tail) if head else (tail, None)


def _email_parts(email: str | None) -> tuple[str | None, str | None]:
    if not email or "@" not in email:
        return None, None
    local, _, domain = email.rpartition("@")
    local = local.split("+", 1)[0]
    return clean(local), clean(domain)


def _wordlike(word: str) -> bool:
    return any(c.isalnum() for c in word)


def _capitalised(word: str) -> str:
    return word[:1].upper() + word[1:].lower()
