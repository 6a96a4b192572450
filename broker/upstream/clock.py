"""Clock skew between an identity provider and the broker, told apart from a bad token.

A token's times (RFC 7519 4.1.4-4.1.6: ``exp``, ``nbf``, ``iat``) are checked with the
connection's ``clock_skew_seconds``. In the authorization code flow the ID token is minted
when the broker redeems the code, a moment before it is checked, so a token "issued in the
future", "not valid yet" or "already expired" means that one of the two clocks is wrong. That
is said plainly, with the difference in seconds, instead of "the token is not valid": the
shopper can do nothing about it, the store can (:class:`ClockSkewed`; docs/design.md,
"Security floor": the check itself is unchanged).

The bounds are joserfc's: ``exp <= now - leeway`` has expired, ``iat``/``nbf > now + leeway``
are in the future.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from broker.errors import InvalidResponse


class ClockSkewed(InvalidResponse):
    """The IdP's clock and ours differ by more than the connection allows. ``offset`` is how
    far the IdP's clock is ahead of ours in seconds (negative: behind), ``allowed`` the
    connection's ``clock_skew_seconds``. The shopper's page names both; so does the log line,
    which holds nothing else of the token."""

    title = "The identity provider's clock and ours disagree"
    code = "clock_skew"

    def __init__(self, *, offset: int, allowed: int, what: str, claim: str) -> None:
        self.offset = offset
        self.allowed = allowed
        direction = "ahead of" if offset > 0 else "behind"
        super().__init__(
            f"Your identity provider's clock is about {abs(offset)} seconds {direction} the "
            f"sign-in service's, more than the {allowed} seconds this store allows, so the "
            "sign-in cannot be accepted. One of the two clocks is wrong: please tell the store "
            "(trying again will not help until it is corrected).",
            detail=(
                f"{what}: clock skew: the IdP's clock is {abs(offset)} s {direction} ours "
                f"({claim}); clock_skew_seconds = {allowed}"
            ),
        )


def check_times(claims: Mapping[str, Any], *, now: int, leeway: int, what: str) -> None:
    """Raise :class:`ClockSkewed` when the token's times are out of bounds because of a clock.

    ``iat`` or ``nbf`` ahead of ``now + leeway``: the IdP's clock is ahead by that much.
    ``exp`` at or before ``now - leeway``: the IdP's clock is behind, by ``now - iat`` (when
    the token says when it was issued, and issued it before it expired), else by
    ``now - exp`` (a token minted a moment ago, at the code exchange, has expired only if the
    IdP's clock says it was minted that long ago). Values that are not numbers are left to the
    token's own checks."""
    for claim in ("iat", "nbf"):
        value = _number(claims.get(claim))
        if value is not None and value > now + leeway:
            raise ClockSkewed(offset=round(value - now), allowed=leeway, what=what, claim=claim)
    expires = _number(claims.get("exp"))
    if expires is not None and expires <= now - leeway:
        issued = _number(claims.get("iat"))
        since = issued if issued is not None and issued <= expires else expires
        offset = -max(round(now - since), 1)
        raise ClockSkewed(offset=offset, allowed=leeway, what=what, claim="exp")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
