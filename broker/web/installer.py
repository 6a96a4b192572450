"""The app's installer for the views that need it (the app callbacks and the admin pages),
built once per app from the runtime (:func:`broker.web.context.runtime`)."""

from __future__ import annotations

from flask import current_app

from broker.admin.installs import AppInstaller
from broker.errors import NotFound
from broker.web.context import runtime


def installer() -> AppInstaller:
    """The app's installer (the ``[app]`` table's callbacks and admin sessions)."""
    found = current_app.extensions.get("broker.installer")
    if found is None:
        broker = runtime()
        if broker.app is None:
            raise NotFound(
                "This broker is not set up as a BigCommerce app.", detail="no [app] table"
            )
        found = AppInstaller(
            broker, redirect_uri=f"{broker.broker_settings.base_url}/bigcommerce/auth"
        )
        current_app.extensions["broker.installer"] = found
    installer_: AppInstaller = found
    return installer_
