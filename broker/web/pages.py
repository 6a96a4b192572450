"""The shopper pages: each store's branding, language and templates (docs/templates.md).

Every page a shopper sees is rendered by :func:`render`, which gives its template the store's
look (:class:`Brand`: name, logo, favicon, colours with a text colour that keeps WCAG 2.1 AA
contrast, support contact, password sign-in and reset pages) and speaks the language chosen by
:func:`current_locale`. A store's ``branding.template_dir`` overrides any template, page by
page: its pages are looked up first, then ours (a Jinja ``ChoiceLoader`` per folder).

Languages: the catalogues are the ``.po`` files of ``broker/translations/<lang>/LC_MESSAGES``
(GNU gettext, Babel); they are compiled in memory the first time a language is used, so a
checkout or an install works with no build step, and no compiled ``.mo`` file can go stale.
The language is the first of the store's ``branding.languages`` that matches, in this order:
``ui_locales`` in the query (OpenID Connect's parameter: space-separated BCP 47 tags; a theme
passes the storefront's locale there), the one this browser chose earlier in the flow (kept
in the session: ``ui_locale``), ``Accept-Language``; else the store's first language.

Messages of :class:`~broker.errors.BrokerError` carry English text: they are translated at
render time with the English text as the message id (the catalogues hold the titles and the
usual messages); a message a catalogue lacks is replaced by the generic message of its error
class in the page's language, never shown in English on a German page.
"""

from __future__ import annotations

import io
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from flask import (
    Flask,
    Response,
    current_app,
    g,
    has_request_context,
    request,
    session,
    url_for,
)
from jinja2 import ChoiceLoader, Environment, FileSystemLoader

from broker import errors
from broker.config import Channel, StoreSettings
from broker.web.context import runtime

TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"
DEFAULT_LANGUAGE = "en"
#: The pages' background (base.html): links in the brand colour must read on it.
PAGE_BACKGROUND = "#f4f5f7"
#: The session key of the language this browser chose (ui_locales) during a flow.
SESSION_LOCALE = "ui_locale"
_TAG = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8}){0,3}$")


def N_(text: str) -> str:
    """Mark ``text`` for the catalogues; it is translated where it is shown."""
    return text


def init_app(app: Flask) -> None:
    """Jinja's i18n extension with our gettext, and the pages' own headers. Call before
    :func:`broker.web.errors.init_app`: Flask runs after-request hooks in reverse order, so
    this one sees the security headers the error module sets and widens ``img-src`` for the
    store's logo only."""
    app.jinja_env.add_extension("jinja2.ext.i18n")
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext, ngettext, newstyle=True
    )
    app.after_request(_page_headers)
    app.context_processor(_page_context)


def _page_context() -> dict[str, Any]:
    """``brand`` and ``lang`` for templates rendered with Flask's ``render_template`` too (the
    admin's test sign-in, the storefront script): the URL's store. Shopper pages go through
    :func:`render`."""
    if not has_request_context():
        return {}
    if "page_brand" not in g:
        g.page_brand = brand(page_store())
    return {"brand": g.page_brand, "lang": current_locale(), "page_nonce": _nonce()}


# -- languages ------------------------------------------------------------------------------


@cache
def _catalog(lang: str) -> NullTranslations:
    """The language's catalogue, compiled from its .po file once per process."""
    path = TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po"
    if lang == DEFAULT_LANGUAGE or not path.is_file():
        return NullTranslations()
    with path.open("rb") as source:
        catalog = read_po(source, locale=lang)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


def _matching(tags: Iterable[str | None], offered: tuple[str, ...]) -> str | None:
    """The first of ``offered`` that one of ``tags`` names (``de-CH`` names ``de``)."""
    for tag in tags:
        if not tag or not _TAG.match(tag):
            continue
        base = tag.replace("_", "-").split("-", 1)[0].lower()
        if base in offered:
            return base
    return None


def requested_locales() -> list[str]:
    """The ``ui_locales`` of the query: well-formed tags only, at most five."""
    given = request.args.get("ui_locales", "")
    return [tag for tag in given.split() if _TAG.match(tag)][:5]


def flow_locales() -> list[str]:
    """The languages to ask the IdP for: the query's ``ui_locales``, else the one this browser
    chose earlier in the flow (a link from the storefront asks once, at its first step)."""
    remembered = session.get(SESSION_LOCALE)
    return requested_locales() or ([remembered] if isinstance(remembered, str) else [])


def offered_languages(store: StoreSettings | None) -> tuple[str, ...]:
    return store.branding.languages if store is not None else (DEFAULT_LANGUAGE,)


def current_locale() -> str:
    """This request's language (see the module's docstring); decided once per request."""
    found = g.get("locale")
    if isinstance(found, str):
        return found
    offered = offered_languages(page_store())
    remembered = session.get(SESSION_LOCALE)
    lang = (
        _matching(requested_locales(), offered)
        or _matching([remembered if isinstance(remembered, str) else None], offered)
        or _matching((value for value, _ in request.accept_languages), offered)
        or offered[0]
    )
    g.locale = lang
    return lang


def remember_locale() -> None:
    """Keep the language the query asked for through the flow (the IdP's way back)."""
    lang = _matching(requested_locales(), offered_languages(page_store()))
    if lang is not None:
        session[SESSION_LOCALE] = lang


def gettext(text: str, **values: Any) -> str:
    translated = _catalog(current_locale()).gettext(text)
    return translated % values if values else translated


def ngettext(singular: str, plural: str, number: int, **values: Any) -> str:
    translated = _catalog(current_locale()).ngettext(singular, plural, number)
    return translated % {"num": number, **values}


def has_translation(text: str) -> bool:
    lang = current_locale()
    return lang == DEFAULT_LANGUAGE or _catalog(lang).gettext(text) != text


# -- the store's look -----------------------------------------------------------------------


def _luminance(color: str) -> float:
    """WCAG 2.1 relative luminance of ``#rrggbb``."""
    channels = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    """WCAG 2.1 contrast ratio of two ``#rrggbb`` colours (1 to 21)."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def text_on(color: str) -> str:
    """Black or white, whichever reads better on ``color``: one of them always reaches 4.5:1."""
    return "#ffffff" if contrast(color, "#ffffff") >= contrast(color, "#000000") else "#000000"


def ink(color: str, background: str = "#ffffff") -> str:
    """``color`` darkened just enough to be AA text (4.5:1) on ``background`` (links)."""
    red, green, blue = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    for step in range(21):
        scale = 1 - step / 20
        candidate = f"#{int(red * scale):02x}{int(green * scale):02x}{int(blue * scale):02x}"
        if contrast(candidate, background) >= 4.5:
            return candidate
    return "#000000"


@dataclass(frozen=True)
class Brand:
    """What every page gets as ``brand`` (docs/templates.md)."""

    name: str
    logo_url: str | None
    favicon_url: str | None
    color: str
    on_color: str
    link_color: str
    support_url: str | None
    support_label: str | None
    storefront_url: str
    account_url: str
    password_url: str
    reset_url: str


def brand(store: StoreSettings | None, channel: Channel | None = None) -> Brand:
    if store is None:
        color = "#2a5bd7"
        return Brand(
            name=gettext("Sign in"),
            logo_url=None,
            favicon_url=None,
            color=color,
            on_color=text_on(color),
            link_color=ink(color, PAGE_BACKGROUND),
            support_url=None,
            support_label=None,
            storefront_url="",
            account_url="",
            password_url="",
            reset_url="",
        )
    channel = channel or store.default_channel
    branding = store.branding
    base = channel.storefront_url
    catalyst = channel.platform == "catalyst"
    support = branding.support
    label = None
    if support is not None:
        label = (
            support.removeprefix("mailto:")
            if support.startswith("mailto:")
            else (urlsplit(support).hostname or support)
        )
    return Brand(
        name=branding.name or (urlsplit(base).netloc or store.key),
        logo_url=branding.logo_url,
        favicon_url=branding.favicon_url,
        color=branding.primary_color,
        on_color=text_on(branding.primary_color),
        link_color=ink(branding.primary_color, PAGE_BACKGROUND),
        support_url=support,
        support_label=label,
        storefront_url=base,
        account_url=f"{base}{channel.default_redirect}",
        password_url=f"{base}/login" if catalyst else f"{base}/login.php",
        reset_url=f"{base}/login/forgot-password"
        if catalyst
        else f"{base}/login.php?action=reset_password",
    )


def page_store() -> StoreSettings | None:
    """The store whose page this request shows: set by :func:`render`, else the URL's."""
    if "page_store" in g:
        found: StoreSettings | None = g.page_store
        return found
    store_key = (request.view_args or {}).get("store_key")
    if store_key is None and request.url_rule is None:
        # Routing's own 404 or 405: the first segment of the path may still name a store.
        store_key = request.path.strip("/").split("/", 1)[0] or None
    store = None
    if isinstance(store_key, str):
        try:
            store = runtime().find_store(store_key)
        except errors.BrokerError:  # the database is down: the page is still shown
            store = None
    g.page_store = store
    return store


def _environment(store: StoreSettings | None) -> Environment:
    """Ours, or an overlay of it whose loader looks in the store's folder first."""
    folder = store.branding.template_dir if store is not None else None
    app = current_app
    if not folder:
        return app.jinja_env
    overlays: dict[str, Environment] = app.extensions.setdefault("broker_page_overlays", {})
    env = overlays.get(folder)
    if env is None:
        base_loader = app.jinja_env.loader
        assert base_loader is not None
        env = app.jinja_env.overlay(loader=ChoiceLoader([FileSystemLoader(folder), base_loader]))
        overlays[folder] = env
    return env


def render(
    template: str,
    store: StoreSettings | None,
    *,
    channel: Channel | None = None,
    **context: Any,
) -> str:
    """A shopper page: ``template`` (the store's own if its folder has one) with ``context``,
    ``store``, ``brand``, ``lang`` and ``page_nonce`` (for the one inline script a page may
    have); ``channel``, when given, is the storefront the brand's links go to, and the page's
    ``channel`` too."""
    g.page_store = store
    lang = current_locale()
    g.page_brand = shown = brand(store, channel)
    if channel is not None:
        context["channel"] = channel
    context.update(
        store=store,
        brand=shown,
        lang=lang,
        page_nonce=_nonce(),
    )
    current_app.update_template_context(context)
    return _environment(store).get_template(template).render(context)


def _nonce() -> str:
    found = g.get("page_nonce")
    if not isinstance(found, str):
        found = g.page_nonce = secrets.token_urlsafe(16)
    return found


def _origin(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def _page_headers(response: Response) -> Response:
    """A page that shows the store's logo or favicon may load images from their origins; a
    page with an inline script (the local time on the confirmation page) runs it by nonce."""
    shown: Brand | None = g.get("page_brand")
    policy = response.headers.get("Content-Security-Policy")
    if shown is None or not policy or "img-src 'self' data:" not in policy:
        return response
    origins = sorted({o for o in (_origin(shown.logo_url), _origin(shown.favicon_url)) if o})
    if origins:
        policy = policy.replace("img-src 'self' data:", f"img-src 'self' data: {' '.join(origins)}")
    if g.get("page_script"):
        policy += f"; script-src 'nonce-{_nonce()}'"
    response.headers["Content-Security-Policy"] = policy
    return response


def allow_page_script() -> None:
    """This page runs its one inline script (by the nonce :func:`render` gives it)."""
    g.page_script = True


# -- errors ---------------------------------------------------------------------------------

#: The generic message of each kind of error, by code, in the page's language when the error's
#: own message has no translation (the first code of the class's MRO found here).
GENERIC_MESSAGES: Mapping[str, str] = {
    "not_found": N_("There is nothing at this address. Check the link, or go back to the store."),
    "flow_error": N_("This sign-in could not be completed. Please start again."),
    "cross_site_request": N_(
        "This page was opened in an unexpected way, so nothing was done. Start again from "
        "the store."
    ),
    "upstream_error": N_(
        "Your organisation's sign-in answered in a way we cannot accept. Please try again; if "
        "it keeps happening, tell the store."
    ),
    "idp_denied": N_("Your organisation's sign-in did not sign you in. Please try again."),
    "idp_unavailable": N_(
        "Your organisation's sign-in is not answering. Please try again in a moment."
    ),
    "upstream_misconfigured": N_(
        "Signing in with your organisation is not set up correctly for this store, so trying "
        "again will not help. Please tell the store."
    ),
    "policy_denied": N_(
        "You cannot sign in to this store this way. Sign in with your password, or ask the store."
    ),
    "clock_skew": N_(
        "Your organisation's sign-in and this store disagree on the time, so the sign-in could "
        "not be trusted. Please tell the store; trying again will not help until the clocks "
        "agree."
    ),
    "too_many_attempts": N_("Too many attempts. Please wait a few minutes, then try again."),
    "bigcommerce_error": N_("The store is not answering. Please try again in a moment."),
    "storage_error": N_("The sign-in service is having trouble. Please try again in a moment."),
    "broker_error": N_("Something went wrong. Please try again."),
    "method_not_allowed": N_("This page cannot be opened this way. Go back and try again."),
}


class MethodNotAllowed(errors.BrokerError):
    """A page asked for with a method it does not take (routing's 405)."""

    status = 405
    title = N_("This page cannot be used this way")
    code = "method_not_allowed"


class PageNotFound(errors.NotFound):
    """An address the broker has no page for (routing's 404)."""

    title = N_("Page not found")
    code = "not_found"


#: Messages raised elsewhere (as BrokerError texts) that the catalogues translate word for
#: word; any other message is shown as its class's generic one (tests/unit/test_translations.py
#: checks each of these is still raised somewhere, so none goes stale).
RAISED_MESSAGES = (
    N_("Too many tries in a short time. Wait half a minute, then try again."),
    N_(
        "Too many wrong passwords. For your account's safety, try again in 15 minutes, or "
        "reset your password on the store."
    ),
    N_(
        "Sign-in through this connection is limited to certain e-mail domains, and yours is "
        "not one of them."
    ),
    N_(
        "There is no customer account for your e-mail address in this store, and the store "
        "does not create accounts on sign-in. Contact the store to be given access."
    ),
    N_(
        "An account with your e-mail address already exists in this store, and this store "
        "does not connect existing accounts to single sign-on. Sign in with your password, or "
        "ask the store to link your account."
    ),
    N_("There is no store here by that name."),
    N_("This store has no such sign-in option."),
    N_("This sign-in option is not available on this storefront."),
    N_("This sign-in has expired or was already used. Please start signing in again."),
    N_(
        "This sign-in was started in another browser or for another store. Please start "
        "signing in again from the store."
    ),
    N_("This sign-in link is incomplete. Please start signing in again."),
    N_("This sign-in answer was already used. Please start signing in again."),
    N_(
        "This sign-in was started in another browser. Please start signing in again from the store."
    ),
    N_("This form has expired or did not come from this page. Please start again."),
    N_(
        "This request came from another site than the store's, so nothing was done. Start "
        "again from the store."
    ),
    N_(
        "This page was opened in an unexpected way, so nothing was done. Start again from "
        "your account page on the store."
    ),
    N_("This page has expired. Start again from your account page on the store."),
    N_(
        "This page was not opened from the store in this browser, so nothing was done. Start "
        "again from your account page on the store."
    ),
    N_("That sign-in is not linked to your account."),
    N_(
        "Open this page from your account page on the store (you may need to sign in to the "
        "store again)."
    ),
    N_("This confirmation has expired or was already used. Please sign in again."),
    N_("Your identity provider could not be reached. Please try again shortly."),
    N_("Your identity provider refused to complete the sign-in. Please start again."),
    N_(
        "Your identity provider did not sign you in. Please try again, or ask your "
        "organisation's administrator."
    ),
    N_(
        "Your organisation has removed your access to this store. If this is a mistake, ask "
        "your administrator."
    ),
    N_("The store could not be reached. Please try again shortly."),
    N_("The sign-in service cannot reach its database. Please try again shortly."),
    N_("The sign-in service met an unexpected problem. Please try again."),
)

#: Titles shown instead of the error's own, by where it happened (the endpoint's blueprint),
#: for the errors whose title speaks of a sign-in.
_SIGNIN_TITLES = frozenset(
    {errors.FlowError.title, errors.BrokerError.title, errors.UpstreamError.title}
)
_TITLES_BY_BLUEPRINT: Mapping[str, str] = {
    "logout": N_("This sign-out could not be completed"),
    "link": N_("This page could not be opened"),
}
#: Errors after which "Try again" cannot help (the store must change something first).
_NO_RETRY = frozenset(
    {"upstream_misconfigured", "access_revoked", "no_customer", "not_found", "clock_skew"}
)


def error_codes(error: type[errors.BrokerError]) -> list[str]:
    found = (getattr(c, "code", None) for c in error.__mro__)
    return [code for code in found if isinstance(code, str)]


def shown_message(error_class: type[errors.BrokerError], message: str) -> str:
    """The error's message in the page's language (see the module's docstring)."""
    if message and has_translation(message):
        return gettext(message)
    for code in error_codes(error_class):
        if code in GENERIC_MESSAGES:
            return gettext(GENERIC_MESSAGES[code])
    fallback = GENERIC_MESSAGES["broker_error"]
    return gettext(fallback)


def shown_title(error_class: type[errors.BrokerError], title: str) -> str:
    blueprint = (request.endpoint or "").split(".", 1)[0]
    if (
        title in _SIGNIN_TITLES
        and blueprint in _TITLES_BY_BLUEPRINT
        and not (request.endpoint or "").startswith("link.confirm")
    ):
        return gettext(_TITLES_BY_BLUEPRINT[blueprint])
    return gettext(title) if has_translation(title) else gettext(errors.BrokerError.title)


def retry_url(store: StoreSettings | None) -> str | None:
    """Where "Try again" goes: the same connection, with the same ``redirect_to`` and
    channel, as the sign-in this browser started last (in the session); else the URL's
    connection; else the store's chooser."""
    if store is None:
        return None
    started = session.get("retry")
    args = request.view_args or {}
    conn_key = args.get("conn_key")
    query: dict[str, Any] = {}
    if (
        isinstance(started, dict)
        and started.get("store") == store.key
        and (conn_key is None or conn_key == started.get("conn"))
    ):
        conn_key = started.get("conn")
        query = {"redirect_to": started.get("redirect_to"), "channel": started.get("channel")}
    if isinstance(conn_key, str) and conn_key in store.connections:
        return url_for(
            "sso.login",
            store_key=store.key,
            conn_key=conn_key,
            **{k: v for k, v in query.items() if v is not None},
        )
    return url_for("sso.choose", store_key=store.key)


def error_page(
    status: int,
    title: str,
    message: str,
    ref: str,
    *,
    error_class: type[errors.BrokerError] = errors.BrokerError,
    template: str = "error.html",
    **context: Any,
) -> Response:
    """An error page in the store's look and language, with the ways on: "Try again" (the
    same sign-in again), the store's password sign-in and support contact, the reference."""
    store = page_store()
    codes = error_codes(error_class)
    blueprint = (request.endpoint or "").split(".", 1)[0]
    retry = None
    if blueprint in ("sso", "saml", "link") and not _NO_RETRY.intersection(codes):
        retry = retry_url(store)
        if blueprint == "link" and not (request.endpoint or "").startswith("link.confirm"):
            retry = None
    body = render(
        template,
        store,
        title=shown_title(error_class, title),
        message=shown_message(error_class, message),
        ref=ref,
        status=status,
        retry_url=retry,
        offer_password=store is not None and blueprint in ("sso", "saml", "link"),
        **context,
    )
    return Response(body, status=status, mimetype="text/html")
