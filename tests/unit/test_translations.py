"""The shopper pages' catalogues are complete and true: every message of the templates, of the
page code and every error title has a translation in each shipped language, with the same
placeholders; nothing stale is kept; and the messages the catalogues translate word for word
(``broker.web.pages.RAISED_MESSAGES``) are still raised somewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from broker import accounts, errors
from broker.settings.values import SHOPPER_LANGUAGES
from broker.upstream import clock
from broker.web import pages

ROOT = Path(__file__).resolve().parents[2]
#: The modules whose errors shoppers meet on the pages (the admin's are English only).
SHOPPER_ERRORS = ("broker.errors", "broker.upstream.clock", "broker.accounts", "broker.web.pages")
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _subclasses(cls: type[errors.BrokerError]) -> list[type[errors.BrokerError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_subclasses(sub))
    return found


def shopper_messages() -> set[str | tuple[str, str]]:
    """What the catalogues must hold (what `pybabel extract` would find, and the titles)."""
    # Imported for their errors, which are among those shown.
    assert accounts.WrongPassword
    assert clock.ClockSkewed
    found: set[str | tuple[str, str]] = set()
    for path in sorted((ROOT / "templates").glob("*.html")):
        for _, message, _, _ in extract_from_file(
            "jinja2", str(path), options={"extensions": "jinja2.ext.i18n"}
        ):
            found.add(message)
    for module in ("broker/web/pages.py", "broker/web/discovery.py"):
        for _, message, _, _ in extract_from_file("python", str(ROOT / module)):
            found.add(message)
    found.update(
        cls.title for cls in _subclasses(errors.BrokerError) if cls.__module__ in SHOPPER_ERRORS
    )
    return found


def _catalog(lang: str) -> dict[str | tuple[str, str], str | tuple[str, ...]]:
    path = ROOT / "broker" / "translations" / lang / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as source:
        catalog = read_po(source, locale=lang)
    return {m.id: m.string for m in catalog if m.id}


@pytest.mark.parametrize("lang", [lang for lang in SHOPPER_LANGUAGES if lang != "en"])
def test_every_shopper_message_is_translated_with_its_placeholders(lang: str) -> None:
    catalog = _catalog(lang)
    wanted = shopper_messages()
    missing = sorted(str(m) for m in wanted if not catalog.get(m))
    assert missing == [], f"{lang}: no translation for {missing}"
    for message_id, translated in catalog.items():
        ids = message_id if isinstance(message_id, tuple) else (message_id,)
        forms = translated if isinstance(translated, tuple) else (translated,)
        expected = set(PLACEHOLDER.findall(ids[-1]))
        for form in forms:
            assert set(PLACEHOLDER.findall(form)) == expected, (lang, message_id, form)
    stale = sorted(str(m) for m in catalog if m not in wanted)
    assert stale == [], f"{lang}: kept but no longer used: {stale}"


def test_the_raised_messages_the_catalogues_translate_are_still_raised() -> None:
    source = " ".join(
        re.sub(r'"\s*\n\s*"', "", path.read_text(encoding="utf-8"))
        for path in (ROOT / "broker").rglob("*.py")
        if path.name != "pages.py"
    )
    stale = [m for m in pages.RAISED_MESSAGES if m not in source]
    assert stale == []


def test_a_language_without_a_catalogue_is_not_offered() -> None:
    for lang in SHOPPER_LANGUAGES:
        if lang != "en":
            assert (
                ROOT / "broker" / "translations" / lang / "LC_MESSAGES" / "messages.po"
            ).is_file()
