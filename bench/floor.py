"""The floor that ``bench/login.py`` compares the broker's OIDC callback with.

A bare Flask route doing only the cryptography the callback cannot avoid: verify one RS256 ID
token with joserfc against a key set (the algorithm list pinned as the broker pins it), then
mint one HS256 Customer Login JWT with joserfc and redirect to the storefront with it. No
storage, no HTTP to anyone, no claim checks beyond what ``jwt.decode`` does.

Served by gunicorn with the settings ``broker serve`` uses (gthread, same workers and threads):

    python -m gunicorn --worker-class gthread --workers 2 --threads 4 bench.floor:app

Each worker makes its own RSA key and signs one ID token at start; every request verifies that
same token again (joserfc caches nothing between calls), so a request costs one RSA-2048
signature check and one HMAC-SHA256, like a callback.

**A whole sign-in's floor** (``bench/signin_ratios.py``), when ``FLOOR_IDP_URL`` names an
OpenID provider (with ``FLOOR_CLIENT_ID``, ``FLOOR_CLIENT_SECRET`` and ``FLOOR_BASE_URL``, this
app's own URL): ``GET /floor/login`` answers the redirect to the provider's authorization
endpoint (state, nonce and a PKCE verifier carried in one HMAC-signed cookie: no storage), and
``GET /floor/callback`` checks that cookie, redeems the code at the token endpoint (one
keep-alive ``httpx.Client`` per worker), verifies the RS256 ID token against the provider's
keys (fetched once) and its nonce, mints the HS256 login JWT and redirects. That is the least
an OIDC relying party can do for a sign-in on this stack: what the broker adds over it is
storage, policy and logging.
"""

from __future__ import annotations

import os
import secrets
import time
import uuid
from urllib.parse import quote

from flask import Flask, redirect
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey
from joserfc.jws import JWSRegistry
from werkzeug.wrappers import Response

ISSUER = "http://127.0.0.1/floor-idp"
CLIENT_ID = "bench-broker"
STOREFRONT = "http://127.0.0.1/s/floor1"
#: The broker's default ``algorithms`` for an OIDC connection.
ALGORITHMS = ["RS256", "PS256", "ES256"]


def create_app() -> Flask:
    idp_key = RSAKey.generate_key(2048, parameters={"kid": "floor-1", "use": "sig"})
    key_set = KeySet.import_key_set({"keys": [idp_key.as_dict(private=False)]})
    now = int(time.time())
    # The claims the development IdP puts in its ID tokens, so the JSON to parse is alike.
    id_token = jwt.encode(
        {"typ": "JWT", "alg": "RS256", "kid": "floor-1"},
        {
            "iss": ISSUER,
            "sub": "bench-floor",
            "aud": CLIENT_ID,
            "exp": now + 365 * 86400,
            "iat": now,
            "auth_time": now,
            "nonce": secrets.token_urlsafe(32),
            "email": "floor@bench.example",
            "email_verified": True,
            "given_name": "Bench",
            "family_name": "Floor",
            "name": "Bench Floor",
            "groups": ["buyers"],
        },
        idp_key,
        algorithms=["RS256"],
    )
    login_key = OctKey.import_key(secrets.token_hex(32))
    registry = JWSRegistry(algorithms=ALGORITHMS)

    app = Flask(__name__)

    @app.get("/<store_key>/oidc/<conn_key>/callback")
    def callback(store_key: str, conn_key: str) -> Response:
        token = jwt.decode(id_token, key_set, registry=registry)
        claims = {
            "iss": "floor-client-id",
            "iat": int(time.time()),
            "jti": str(uuid.uuid4()),
            "operation": "customer_login",
            "store_hash": "floor1",
            "customer_id": len(token.claims["sub"]),
            "channel_id": 1,
            "redirect_to": "/account.php",
        }
        login = jwt.encode({"typ": "JWT", "alg": "HS256"}, claims, login_key, algorithms=["HS256"])
        return redirect(f"{STOREFRONT}/login/token/{quote(login, safe='.-_')}", code=302)

    @app.get("/healthz")
    def healthz() -> str:
        return "ok"

    if os.environ.get("FLOOR_IDP_URL"):
        _add_sign_in(app, login_key)
    return app


def _add_sign_in(app: Flask, login_key: OctKey) -> None:
    """``/floor/login`` and ``/floor/callback``: a whole OIDC sign-in, nothing stored."""
    import base64
    import hashlib
    import hmac
    import json
    from urllib.parse import urlencode

    import httpx
    from flask import request

    issuer = os.environ["FLOOR_IDP_URL"]
    client_id = os.environ["FLOOR_CLIENT_ID"]
    client_secret = os.environ["FLOOR_CLIENT_SECRET"]
    redirect_uri = f"{os.environ['FLOOR_BASE_URL']}/floor/callback"
    http = httpx.Client(timeout=10, trust_env=False)
    discovery = http.get(f"{issuer}/.well-known/openid-configuration").json()
    keys = KeySet.import_key_set(http.get(discovery["jwks_uri"]).json())
    registry = JWSRegistry(algorithms=ALGORITHMS)
    cookie_key = secrets.token_bytes(32)

    def seal(values: dict[str, str]) -> str:
        body = base64.urlsafe_b64encode(json.dumps(values).encode()).decode()
        mac = hmac.new(cookie_key, body.encode(), hashlib.sha256).hexdigest()
        return f"{body}.{mac}"

    def unseal(cookie: str) -> dict[str, str] | None:
        body, _, mac = cookie.rpartition(".")
        good = hmac.new(cookie_key, body.encode(), hashlib.sha256).hexdigest()
        if not body or not hmac.compare_digest(mac, good):
            return None
        values: dict[str, str] = json.loads(base64.urlsafe_b64decode(body))
        return values

    @app.get("/floor/login")
    def floor_login() -> Response:
        flow = {
            "state": secrets.token_urlsafe(32),
            "nonce": secrets.token_urlsafe(32),
            "verifier": secrets.token_urlsafe(48),
        }
        challenge = hashlib.sha256(flow["verifier"].encode()).digest()
        query = urlencode(
            {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "scope": "openid email profile groups",
                "state": flow["state"],
                "nonce": flow["nonce"],
                "code_challenge": base64.urlsafe_b64encode(challenge).rstrip(b"=").decode(),
                "code_challenge_method": "S256",
            }
        )
        response = redirect(f"{discovery['authorization_endpoint']}?{query}", code=302)
        response.set_cookie("floor_flow", seal(flow), httponly=True, samesite="Lax")
        return response

    @app.get("/floor/callback")
    def floor_callback() -> Response | tuple[str, int]:
        flow = unseal(request.cookies.get("floor_flow", ""))
        if flow is None or request.args.get("state") != flow["state"]:
            return "state mismatch", 400
        answer = http.post(
            discovery["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": request.args.get("code", ""),
                "redirect_uri": redirect_uri,
                "code_verifier": flow["verifier"],
            },
            auth=(client_id, client_secret),
        )
        if answer.status_code != 200:
            return "token endpoint refused", 502
        token = jwt.decode(answer.json()["id_token"], keys, registry=registry)
        claims = token.claims
        if claims.get("nonce") != flow["nonce"] or claims.get("aud") not in (
            client_id,
            [client_id],
        ):
            return "bad id token", 400
        login = jwt.encode(
            {"typ": "JWT", "alg": "HS256"},
            {
                "iss": "floor-client-id",
                "iat": int(time.time()),
                "jti": str(uuid.uuid4()),
                "operation": "customer_login",
                "store_hash": "floor1",
                "customer_id": len(str(claims["sub"])),
                "channel_id": 1,
                "redirect_to": "/account.php",
            },
            login_key,
            algorithms=["HS256"],
        )
        response = redirect(f"{STOREFRONT}/login/token/{quote(login, safe='.-_')}", code=302)
        response.delete_cookie("floor_flow")
        return response


app = create_app()
