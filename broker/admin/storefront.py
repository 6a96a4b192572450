"""Put the broker on a store's storefronts through the Scripts API, in one click from the
admin (and take it off again; BigCommerce removes ``auto_uninstall`` scripts itself when the
app is uninstalled).

Per channel, two scripts: ``storefront.js`` (account linking, following an IdP logout), and
a small inline script that adds a "Sign in with your company" link next to the storefront's
sign-in form, pointing at the store's chooser (``/{store}/login``). Both are named
:data:`SCRIPT_PREFIX` … so the admin finds its own among the store's scripts.
"""

from __future__ import annotations

import json
from typing import Any

from broker.bigcommerce.api import BigCommerceClient
from broker.config import StoreSettings

SCRIPT_PREFIX = "Storefront SSO broker"
SIGN_IN_LABEL = "Sign in with your company"


def sign_in_snippet(chooser_url: str) -> str:
    """An inline script: a link to the chooser before the first sign-in form of the page."""
    url = json.dumps(chooser_url)
    label = json.dumps(SIGN_IN_LABEL)
    return (
        "<script>(function(){"
        "if(!/\\/login(\\.php)?$/.test(location.pathname)||document.getElementById('sso-signin-link'))return;"
        "var form=document.querySelector('form');if(!form)return;"
        "var a=document.createElement('a');a.id='sso-signin-link';a.className='button';"
        f"a.href={url};a.textContent={label};"
        "var p=document.createElement('p');p.appendChild(a);"
        "form.parentNode.insertBefore(p,form);})();</script>"
    )


def planned_scripts(store: StoreSettings, base_url: str) -> list[dict[str, Any]]:
    """The scripts the broker puts on each of the store's channels."""
    scripts: list[dict[str, Any]] = []
    for channel in store.channels.values():
        suffix = "" if channel.id == store.channel_id else f"?channel={channel.id}"
        chooser = f"{base_url}/{store.key}/login{suffix}"
        scripts.append(
            {
                "name": f"{SCRIPT_PREFIX}: storefront script (channel {channel.id})",
                "description": "Account linking and following an IdP sign-out",
                "src": f"{base_url}/{store.key}/storefront.js{suffix}",
                "kind": "src",
                "load_method": "defer",
                "location": "footer",
                "visibility": "all_pages",
                "consent_category": "essential",
                "auto_uninstall": True,
                "enabled": True,
                "channel_id": channel.id,
            }
        )
        scripts.append(
            {
                "name": f"{SCRIPT_PREFIX}: sign-in link (channel {channel.id})",
                "description": "A link to sign in with the company's identity provider",
                "html": sign_in_snippet(chooser),
                "kind": "script_tag",
                "location": "footer",
                "visibility": "storefront",
                "consent_category": "essential",
                "auto_uninstall": True,
                "enabled": True,
                "channel_id": channel.id,
            }
        )
    return scripts


def installed_scripts(client: BigCommerceClient) -> list[dict[str, Any]]:
    return [s for s in client.scripts() if str(s.get("name", "")).startswith(SCRIPT_PREFIX)]


def install_scripts(client: BigCommerceClient, store: StoreSettings, base_url: str) -> int:
    """Add what is missing (by name: clicking twice adds nothing); returns how many."""
    present = {s.get("name") for s in installed_scripts(client)}
    added = 0
    for script in planned_scripts(store, base_url):
        if script["name"] not in present:
            client.create_script(script)
            added += 1
    return added


def remove_scripts(client: BigCommerceClient) -> int:
    found = installed_scripts(client)
    for script in found:
        client.delete_script(str(script["uuid"]))
    return len(found)
