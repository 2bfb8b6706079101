"""Translations: the UI speaks Russian by default and English on request, and the catalogue is complete.

The project-wide catalogue is locale/<lang>/LC_MESSAGES/django.po (see locale/README.md); the Telegram bot and
the reports app keep their own catalogues next to their code.
"""

import ast
import gettext
import os
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation

from analysis.models import CallType, Disposition
from calls.models import Call, Stage
from clinics.models import Clinic, QuotaPeriod
from medai import settings as base_settings

LOCALE = Path(settings.BASE_DIR) / "locale"


# --- a minimal .po reader (no third-party dependency) ----------------------------------------
def _unquote(text: str) -> str:
    return ast.literal_eval(text)


def read_po(path: Path) -> list[dict]:
    """Entries as {"msgctxt", "msgid", "msgid_plural", "msgstr": {index: text}, "flags", "line"}; obsolete ones skipped."""
    entries: list[dict] = []
    entry: dict | None = None
    field: tuple[str, int | None] | None = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#~"):
            continue
        # A comment or a msgctxt/msgid after a msgstr starts the next entry.
        if (line.startswith(("#", "msgctxt ", "msgid "))) and (entry is None or entry["msgstr"]):
            if entry is not None:
                entries.append(entry)
            entry = {"flags": set(), "msgstr": {}, "line": number}
        if line.startswith("#"):
            if line.startswith("#,"):
                entry["flags"].update(flag.strip() for flag in line[2:].split(","))
            continue
        if line.startswith('"'):
            assert field is not None, f"{path}:{number}: continuation without a keyword"
            name, index = field
            if name == "msgstr":
                entry["msgstr"][index] += _unquote(line)
            else:
                entry[name] += _unquote(line)
            continue
        keyword, _, value = line.partition(" ")
        if keyword == "msgstr" or keyword.startswith("msgstr["):
            index = int(keyword[7:-1]) if keyword != "msgstr" else None
            entry["msgstr"][index] = _unquote(value)
            field = ("msgstr", index)
        elif keyword in ("msgctxt", "msgid", "msgid_plural"):
            entry[keyword] = _unquote(value)
            field = (keyword, None)
        else:
            raise AssertionError(f"{path}:{number}: unexpected line {raw!r}")
    if entry is not None and "msgid" in entry:
        entries.append(entry)
    return [e for e in entries if "msgid" in e]


def _key(entry: dict) -> str:
    return f"{entry['msgctxt']}\x04{entry['msgid']}" if entry.get("msgctxt") else entry["msgid"]


# --- the catalogue itself ---------------------------------------------------------------------
def test_ru_catalogue_is_complete():
    entries = read_po(LOCALE / "ru" / "LC_MESSAGES" / "django.po")
    assert len(entries) > 100, "the ru catalogue looks empty: run `make messages`"
    header, *messages = entries
    assert header["msgid"] == ""
    assert "fuzzy" not in header["flags"]
    assert "Language: ru" in header["msgstr"][None]
    assert "nplurals=3;" in header["msgstr"][None]

    untranslated = [
        f"line {e['line']}: {e['msgid']!r}"
        for e in messages
        if not all(e["msgstr"].values()) or ("msgid_plural" in e and len(e["msgstr"]) != 3)
    ]
    fuzzy = [f"line {e['line']}: {e['msgid']!r}" for e in messages if "fuzzy" in e["flags"]]
    assert not untranslated, "untranslated entries in locale/ru/LC_MESSAGES/django.po:\n" + "\n".join(untranslated)
    assert not fuzzy, "fuzzy entries in locale/ru/LC_MESSAGES/django.po:\n" + "\n".join(fuzzy)


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_compiled_catalogue_matches_po(lang):
    """The committed .mo is what `compilemessages` makes of the .po (so nobody forgot to compile)."""
    directory = LOCALE / lang / "LC_MESSAGES"
    with (directory / "django.mo").open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)._catalog
    expected = {}
    for entry in read_po(directory / "django.po")[1:]:
        if "fuzzy" in entry["flags"] or not all(entry["msgstr"].values()):
            continue  # msgfmt leaves these out
        if "msgid_plural" in entry:
            expected.update({(_key(entry), index): text for index, text in entry["msgstr"].items()})
        else:
            expected[_key(entry)] = entry["msgstr"][None]
    compiled.pop("", None)
    assert compiled == expected, f"locale/{lang}/LC_MESSAGES/django.mo is stale: run compilemessages"


# --- strings come out in the active language ---------------------------------------------------
UI_STRINGS = [
    # (what, callable giving the string, Russian, English)
    ("model verbose name", lambda: Clinic._meta.verbose_name, "клиника", "clinic"),
    ("model verbose name (plural)", lambda: Call._meta.verbose_name_plural, "звонки", "calls"),
    ("pipeline stage", lambda: Stage.TRANSCRIBED.label, "Расшифрован", "Transcribed"),
    ("call type", lambda: CallType.FIRST_CONTACT.label, "Первичное обращение", "First contact"),
    ("disposition", lambda: Disposition.BOOKED.label, "Запись", "Booked"),
    ("quota period", lambda: QuotaPeriod.Kind.MONTH.label, "Месяц", "Month"),
    (
        "API error",
        lambda: translation.gettext("Invalid or revoked API key."),
        "Недействительный или отозванный API-ключ.",
        "Invalid or revoked API key.",
    ),
]


@pytest.mark.parametrize(("what", "get", "ru", "en"), UI_STRINGS, ids=[row[0] for row in UI_STRINGS])
def test_ui_strings_follow_the_active_language(what, get, ru, en):
    with translation.override("ru"):
        assert str(get()) == ru
    with translation.override("en"):
        assert str(get()) == en


def test_placeholders_survive_translation():
    with translation.override("ru"):
        text = translation.gettext(
            "Imported %(imported)d of %(rows)d rows; %(duplicates)d duplicates, "
            "%(dnc)d on the do-not-call list, %(errors)d with errors."
        )
        assert text % {"imported": 7, "rows": 9, "duplicates": 1, "dnc": 0, "errors": 1} == (
            "Импортировано строк: 7 из 9; дубликатов: 1, в стоп-листе: 0, с ошибками: 1."
        )


# --- over HTTP: LocaleMiddleware picks the language ---------------------------------------------
@pytest.fixture
def shipped_default_language(settings):
    """The default of medai/settings.py, even where the test settings switch (parts of) the suite to English."""
    settings.LANGUAGE_CODE = base_settings.LANGUAGE_CODE
    return base_settings.LANGUAGE_CODE


def test_russian_is_the_shipped_default():
    if os.environ.get("LANGUAGE_CODE", "ru") != "ru":
        pytest.skip("LANGUAGE_CODE is overridden in this environment")
    assert base_settings.LANGUAGE_CODE == "ru"
    assert [code for code, _name in settings.LANGUAGES] == ["ru", "en"]


@pytest.mark.django_db
def test_admin_login_page_is_russian_by_default(client, shipped_default_language):
    if shipped_default_language != "ru":
        pytest.skip("LANGUAGE_CODE is overridden in this environment")
    response = client.get("/admin/login/")
    assert response.status_code == 200
    assert response.headers["Content-Language"] == "ru"
    page = response.content.decode()
    assert '<html lang="ru"' in page
    assert "Имя пользователя" in page
    assert "Войти" in page


@pytest.mark.django_db
def test_admin_login_page_is_english_on_request(client, shipped_default_language):
    response = client.get("/admin/login/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert response.headers["Content-Language"] == "en"
    page = response.content.decode()
    assert '<html lang="en"' in page
    assert "Username" in page
    assert "Log in" in page
    assert "Имя пользователя" not in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("accept_language", "message"),
    [
        (None, "Недействительный или отозванный API-ключ."),
        ("en", "Invalid or revoked API key."),
        ("ru", "Недействительный или отозванный API-ключ."),
    ],
)
def test_api_errors_follow_accept_language(api_client, shipped_default_language, accept_language, message):
    if accept_language is None and shipped_default_language != "ru":
        pytest.skip("LANGUAGE_CODE is overridden in this environment")
    headers = {"HTTP_ACCEPT_LANGUAGE": accept_language} if accept_language else {}
    response = api_client.get("/api/calls/", HTTP_X_API_KEY="not-a-key", **headers)
    assert response.status_code in (401, 403)
    assert response.json()["error"]["message"] == message
