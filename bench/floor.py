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
"""

from __future__ import annotations

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

    return app


app = create_app()
