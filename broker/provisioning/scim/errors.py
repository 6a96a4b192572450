"""The SCIM error (RFC 7644 §3.12): an HTTP status, a detail and an optional ``scimType``."""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


class ScimError(Exception):
    """A request the service provider refuses, rendered as a SCIM error body.

    ``scim_type`` is one of RFC 7644 §3.12's codes (``invalidFilter``, ``tooMany``,
    ``uniqueness``, ``mutability``, ``invalidSyntax``, ``invalidPath``, ``noTarget``,
    ``invalidValue``, ``invalidVers``, ``sensitive``), only meaningful with status 400 (and
    409 for ``uniqueness``).
    """

    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type

    def body(self) -> dict[str, Any]:
        """The error response body; ``status`` is a string (RFC 7644 §3.12)."""
        document: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(self.status)}
        if self.scim_type is not None:
            document["scimType"] = self.scim_type
        document["detail"] = self.detail
        return document

    def __repr__(self) -> str:
        return f"ScimError({self.status!r}, {self.detail!r}, {self.scim_type!r})"
