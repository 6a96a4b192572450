"""Microsoft Graph, for Entra ID's groups overage: a person's groups read with their own token.

An Entra ID token holds at most 200 groups (a JWT; 150 in SAML). Past that it carries
``_claim_names``/``_claim_sources`` instead (OpenID Connect Core 5.6.2, distributed claims),
whose endpoint is the retired Azure AD Graph (``graph.windows.net``): Microsoft's guidance
("Configure group claims for applications", the groups overage claim) is to ask Microsoft
Graph instead. The broker never calls the endpoint the token names: it calls
``POST {graph_url}/v1.0/me/getMemberObjects`` with ``{"securityEnabledOnly": false}`` and the
sign-in's access token (the groups, transitive, of the person the token is about: ids, as the
``groups`` claim carries them), following ``@odata.nextLink`` only on the same origin.

The access token must be one for Microsoft Graph allowed to read group memberships (delegated
``GroupMember.Read.All``, admin-consented; docs/idps/entra-id.md). Any failure is an error
whose message says what to do: the sign-in never goes on with a partial list of groups.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from broker.errors import IdPUnavailable, UpstreamMisconfigured

MEMBER_OBJECTS_PATH = "/v1.0/me/getMemberObjects"
#: getMemberObjects answers in one page in practice; a few more are followed, never a loop.
MAX_PAGES = 10
#: Far more than any real directory gives one person; a bound on what a hostile answer costs.
MAX_GROUPS = 20_000


def member_groups(http: httpx.Client, graph_url: str, access_token: str) -> tuple[str, ...]:
    """The ids of every group the access token's user is a member of (transitively)."""
    url: str | None = graph_url.rstrip("/") + MEMBER_OBJECTS_PATH
    origin = _origin(graph_url)
    found: list[str] = []
    body: dict[str, object] | None = {"securityEnabledOnly": False}
    for _ in range(MAX_PAGES):
        if url is None:
            break
        page = _request(http, url, access_token, body)
        values = page.get("value")
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise IdPUnavailable(
                "Microsoft Graph answered unexpectedly while reading your groups. Please try "
                "again shortly.",
                detail="graph getMemberObjects: no list of ids in the answer",
            )
        found.extend(values)
        if len(found) > MAX_GROUPS:
            raise IdPUnavailable(
                "Microsoft Graph answered unexpectedly while reading your groups.",
                detail=f"graph getMemberObjects: more than {MAX_GROUPS} groups",
            )
        following = page.get("@odata.nextLink")
        url = following if isinstance(following, str) and _origin(following) == origin else None
        body = None  # a next link is fetched with GET
    return tuple(dict.fromkeys(found))


def _request(
    http: httpx.Client, url: str, access_token: str, body: dict[str, object] | None
) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
    try:
        if body is not None:
            response = http.post(url, json=body, headers=headers)
        else:
            response = http.get(url, headers=headers)
    except httpx.HTTPError as exc:
        raise IdPUnavailable(
            "Microsoft Graph, where your groups are read, could not be reached. Please try "
            "again shortly.",
            detail=f"graph getMemberObjects: {type(exc).__name__}",
        ) from None
    if response.status_code in (401, 403):
        raise UpstreamMisconfigured(
            "Your organisation is in more groups than fit in its sign-in token, and this "
            "store is not allowed to read them from Microsoft Graph, so it cannot sign you "
            "in. Please tell the store.",
            detail=(
                f"graph getMemberObjects answered {response.status_code}: the access token must "
                "be for Microsoft Graph with GroupMember.Read.All (admin consent) among the "
                "connection's scopes; or emit only the groups assigned to the application in "
                "the app registration, or use app roles"
            ),
        )
    if response.status_code != 200:
        raise IdPUnavailable(
            "Microsoft Graph, where your groups are read, is not answering. Please try again "
            "shortly.",
            detail=f"graph getMemberObjects answered {response.status_code}",
        )
    try:
        page = response.json()
    except ValueError:
        page = None
    if not isinstance(page, dict):
        raise IdPUnavailable(
            "Microsoft Graph answered unexpectedly while reading your groups.",
            detail="graph getMemberObjects: not a JSON object",
        )
    return page


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc
