"""The pages the control panel frames (the app callbacks that answer a page, and the admin):
their Content-Security-Policy lets only ``[app].frame_ancestors`` frame them."""

from __future__ import annotations

from flask import Response

from broker.web.context import runtime


def allow_control_panel_frame(response: Response) -> Response:
    app = runtime().app
    ancestors = " ".join(app.frame_ancestors) if app else "'none'"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        f"form-action 'self'; frame-ancestors {ancestors}; base-uri 'none'"
    )
    # The admin session is in the URL: never send it to another site, but name our own
    # origin (with "no-referrer", browsers send `Origin: null` on the admin's own forms).
    response.headers["Referrer-Policy"] = "same-origin"
    return response
