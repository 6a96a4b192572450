"""The admin session, carried in a signed token instead of a cookie.

The admin runs in the control panel's iframe, on another site than the control panel: Safari,
Firefox and often Chrome block such third-party cookies, so (as BigCommerce's own sample app
does) the session is a token the pages carry in their links and forms (``?ctx=``): signed
with ``[broker] secret_key`` (itsdangerous), naming the store and the control-panel user, and
valid for ``[app] admin_session_minutes``. Every request checks the user may still administer
the store (``remove_user`` ends it at once). The CSRF value of forms is derived from the
token, so a page of another site can forge neither.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from broker.errors import AdminDenied

_SALT = "broker.admin.context"


@dataclass(frozen=True)
class AdminSession:
    store: str
    user_id: int
    token: str

    @property
    def csrf(self) -> str:
        return csrf_for(self.token)


def csrf_for(token: str) -> str:
    return hashlib.sha256(("csrf:" + token).encode()).hexdigest()[:32]


class AdminSessions:
    def __init__(self, secret_key: str, *, minutes: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt=_SALT)
        self._max_age = minutes * 60

    def open(self, store: str, user_id: int) -> AdminSession:
        token = self._serializer.dumps({"s": store, "u": user_id, "n": secrets.token_hex(8)})
        return AdminSession(store=store, user_id=user_id, token=token)

    def verify(self, token: str | None, *, store: str) -> AdminSession:
        """The session a token names, for this store; AdminDenied when it is not one."""
        if not token:
            raise AdminDenied(
                "Open the app from the store's control panel (Apps → My apps).",
                detail="no admin context",
            )
        try:
            data = self._serializer.loads(token, max_age=self._max_age)
        except SignatureExpired:
            raise AdminDenied(
                "This admin page has been open too long. Open the app again from the "
                "control panel.",
                detail="admin context expired",
            ) from None
        except BadSignature:
            raise AdminDenied(
                "Open the app from the store's control panel.", detail="admin context forged"
            ) from None
        if (
            not isinstance(data, dict)
            or data.get("s") != store
            or not isinstance(data.get("u"), int)
        ):
            raise AdminDenied(
                "This admin page belongs to another store.", detail="admin context store"
            )
        return AdminSession(store=store, user_id=int(data["u"]), token=token)

    @staticmethod
    def check_csrf(session: AdminSession, value: str | None) -> bool:
        return bool(value) and hmac.compare_digest(session.csrf, str(value))
