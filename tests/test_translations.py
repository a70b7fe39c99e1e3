"""Romanian and English (README, "Languages"): the catalog is complete and compiled, and
``Accept-Language`` picks the language of API messages and tariff summaries, while error
codes stay English."""

import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import polib
import pytest
from django.db import connection
from django.utils import timezone

from parking.models import ParkingSession, SecuredParking, State, Tariff
from smart_keys.models import AccessEvent, AccessLogEntry
from tests.api import CURRENT_URL, SECURED_PARKINGS_URL, error_body, session_action, start_session
from tests.factories import ParkingSessionFactory, SecuredParkingFactory, TariffFactory

REPO = Path(__file__).resolve().parent.parent
CATALOG = Path("locale/ro/LC_MESSAGES/django.po")
# What a working copy holds besides the sources makemessages reads.
NOT_SOURCES = (".git", ".venv", "test-artifacts", "staticfiles", "*.sqlite3", "__pycache__")
GETTEXT_TOOLS = ("xgettext", "msgmerge", "msguniq", "msgattrib", "msgfmt")


def entry_key(entry: polib.POEntry) -> tuple[str | None, str, str]:
    return (entry.msgctxt, entry.msgid, entry.msgid_plural)


def is_translated(entry: polib.POEntry) -> bool:
    if entry.msgid_plural:
        return bool(entry.msgstr_plural) and all(entry.msgstr_plural.values())
    return bool(entry.msgstr)


class TestCatalog:
    def test_every_entry_is_translated_and_none_is_fuzzy(self):
        catalog = polib.pofile(str(REPO / CATALOG))

        assert not catalog.metadata_is_fuzzy
        assert [e.msgid for e in catalog if not is_translated(e)] == []
        assert [e.msgid for e in catalog.fuzzy_entries()] == []
        assert catalog.obsolete_entries() == []

    def test_the_compiled_catalog_is_the_current_one(self):
        # The .mo is committed (a fresh machine runs without gettext): it must say what the .po
        # says, or the app would speak last week's Romanian.
        catalog = polib.pofile(str(REPO / CATALOG))
        compiled = polib.mofile(str((REPO / CATALOG).with_suffix(".mo")))

        assert {entry_key(e): (e.msgstr, e.msgstr_plural) for e in compiled} == {
            entry_key(e): (e.msgstr, e.msgstr_plural) for e in catalog.translated_entries()
        }

    def test_translations_keep_the_placeholders_of_their_message(self, gettext_tools):
        # msgfmt --check compares python-brace-format placeholders and the plural forms.
        checked = subprocess.run(
            ["msgfmt", "--check", "-o", os.devnull, str(REPO / CATALOG)],
            capture_output=True,
            text=True,
        )
        assert checked.returncode == 0, checked.stderr

    def test_every_message_of_the_code_and_templates_is_in_the_catalog(
        self, gettext_tools, tmp_path
    ):
        # makemessages (make messages) on a copy of the working tree: what it would add is
        # untranslated, what it would change is fuzzy, and what it drops is no longer used.
        copy = tmp_path / "copy"
        shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(*NOT_SOURCES))
        venv = Path(sys.executable).parent.parent
        made = subprocess.run(
            ["make", "--no-print-directory", "messages", f"VENV={venv}"],
            cwd=copy,
            capture_output=True,
            text=True,
        )
        assert made.returncode == 0, made.stdout + made.stderr
        committed = polib.pofile(str(REPO / CATALOG))
        extracted = polib.pofile(str(copy / CATALOG))

        assert [e.msgid for e in extracted if not is_translated(e)] == [], (
            "new messages: translate them in locale/ro (make messages, make compile-messages)"
        )
        assert [e.msgid for e in extracted.fuzzy_entries()] == [], "changed messages"
        assert {entry_key(e) for e in extracted} == {entry_key(e) for e in committed}, (
            "the catalog holds messages the code no longer has: run make messages"
        )


def test_the_framework_messages_we_translate_are_still_the_frameworks():
    # core/framework_messages.py fills gaps in Django's and DRF's Romanian: a message they
    # renamed would be translated in vain, and theirs would come out in English again.
    import django
    import rest_framework

    import core.framework_messages

    sources = [
        Path(django.__file__).parent / "conf/locale/en/LC_MESSAGES/django.po",
        Path(django.__file__).parent / "contrib/auth/locale/en/LC_MESSAGES/django.po",
        Path(rest_framework.__file__).parent / "locale/en/LC_MESSAGES/django.mo",
    ]
    theirs = set()
    for source in sources:
        catalog = polib.mofile(str(source)) if source.suffix == ".mo" else polib.pofile(str(source))
        theirs |= {(e.msgid, e.msgid_plural) for e in catalog}
    ours = [
        (e.msgid, e.msgid_plural)
        for e in polib.pofile(str(REPO / CATALOG))
        if [path for path, _line in e.occurrences] == ["core/framework_messages.py"]
    ]

    assert len(ours) == len(core.framework_messages.DJANGO_REST_FRAMEWORK) + len(
        core.framework_messages.DJANGO
    )
    assert [message for message in ours if message not in theirs] == []


@pytest.fixture
def gettext_tools():
    missing = [tool for tool in GETTEXT_TOOLS if shutil.which(tool) is None]
    if missing:
        # CI installs gettext and sets REQUIRE_GETTEXT: there this is a failure.
        message = f"needs GNU gettext ({', '.join(missing)} not found)"
        if os.environ.get("REQUIRE_GETTEXT"):
            pytest.fail(message)
        pytest.skip(message)


def speaking(language: str | None) -> dict[str, str]:
    return {} if language is None else {"HTTP_ACCEPT_LANGUAGE": language}


class TestApiLanguage:
    @pytest.mark.parametrize(
        ("accept_language", "language", "detail"),
        [
            ("ro", "ro", "Nu aveți nicio sesiune de parcare deschisă."),
            ("ro-RO,ro;q=0.9,en;q=0.5", "ro", "Nu aveți nicio sesiune de parcare deschisă."),
            ("en", "en", "You have no open parking session."),
            ("en-GB,en;q=0.9", "en", "You have no open parking session."),
            ("de-DE,de;q=0.9,en;q=0.8", "en", "You have no open parking session."),
        ],
    )
    def test_accept_language_picks_the_message_and_the_code_stays(
        self, driver_client, accept_language, language, detail
    ):
        response = driver_client.get(CURRENT_URL, **speaking(accept_language))

        assert response.status_code == 404
        assert error_body(response)["errors"] == [
            {"code": "not_found", "detail": detail, "attr": None}
        ]
        assert response["Content-Language"] == language
        assert "Accept-Language" in response["Vary"]

    @pytest.mark.parametrize("accept_language", [None, "de", "*"])
    def test_a_request_naming_no_known_language_gets_the_default(
        self, driver_client, settings, accept_language
    ):
        settings.LANGUAGE_CODE = "ro"

        response = driver_client.get(CURRENT_URL, **speaking(accept_language))

        assert response["Content-Language"] == "ro"
        assert error_body(response)["errors"][0]["detail"] == (
            "Nu aveți nicio sesiune de parcare deschisă."
        )

    def test_the_default_is_a_setting(self, driver_client, settings):
        settings.LANGUAGE_CODE = "en"

        response = driver_client.get(CURRENT_URL)

        assert response["Content-Language"] == "en"
        assert error_body(response)["errors"][0]["detail"] == "You have no open parking session."

    def test_a_successful_answer_says_its_language_too(self, driver_client):
        ParkingSessionFactory(driver=driver_client.driver)

        response = driver_client.get(CURRENT_URL, **speaking("ro"))

        assert response.status_code == 200
        assert (response["Content-Language"], response["Vary"]) == ("ro", "Accept-Language")

    def test_the_language_costs_the_hot_read_no_query(
        self, driver_client, django_assert_num_queries
    ):
        ParkingSessionFactory(driver=driver_client.driver)
        # As tests/test_current_session.py counts them: the token with its user, then the
        # session's document (SQLite, the local demo's database, takes a third).
        queries = 2 if connection.vendor == "postgresql" else 3

        with django_assert_num_queries(queries):
            response = driver_client.get(
                CURRENT_URL,
                HTTP_ACCEPT_LANGUAGE="ro-RO,ro;q=0.9",
                HTTP_COOKIE="django_language=en",
            )

        assert response.status_code == 200
        # A choice made with set_language (the cookie) comes before Accept-Language.
        assert response["Content-Language"] == "en"

    def test_a_domain_refusal_is_translated_with_its_code_and_members(self, driver_client):
        open_session = ParkingSessionFactory(driver=driver_client.driver, state=State.ACTIVE)

        response = start_session(driver_client, SecuredParkingFactory(), **speaking("ro"))

        assert response.status_code == 409
        body = error_body(response)
        assert body["parking_session_id"] == open_session.pk
        assert body["errors"] == [
            {
                "code": "open_session_exists",
                "detail": f"Aveți deja o sesiune de parcare deschisă (#{open_session.pk}, "
                "active); încheiați-o sau anulați-o mai întâi.",
                "attr": None,
            }
        ]

    def test_validation_messages_of_ours_and_of_the_framework_are_translated(self, driver_client):
        response = driver_client.post(
            "/api/car_driver/parking_sessions", {"amount": "1.00"}, format="json", **speaking("ro")
        )

        assert response.status_code == 400
        assert {(e["attr"], e["code"], e["detail"]) for e in error_body(response)["errors"]} == {
            ("amount", "invalid", "Acest câmp nu poate fi setat aici."),
        }
        response = driver_client.post(
            "/api/car_driver/parking_sessions", {}, format="json", **speaking("ro")
        )
        assert [(e["code"], e["detail"]) for e in error_body(response)["errors"]] == [
            ("required", "Acest câmp este obligatoriu.")
        ]

    def test_a_refusal_before_any_view_is_translated(self, driver_client, settings):
        settings.API_MAX_BODY_BYTES = 10

        response = driver_client.post(
            "/api/car_driver/parking_sessions",
            {"secured_parking_id": 123456},
            format="json",
            **speaking("ro"),
        )

        assert response.status_code == 413
        assert error_body(response)["errors"] == [
            {
                "code": "request_too_large",
                "detail": "Corpul cererii depășește 10 octeți.",
                "attr": None,
            }
        ]
        assert response["Content-Language"] == "ro"

    def test_the_access_log_keeps_the_services_language_whatever_the_driver_speaks(
        self, driver_client, settings
    ):
        settings.LANGUAGE_CODE = "ro"
        session = ParkingSessionFactory(driver=driver_client.driver, state=State.ENTERING)
        ParkingSession.objects.filter(pk=session.pk).update(entrance_remaining_tries=0)

        response = driver_client.post(
            f"/api/car_driver/parking_sessions/{session.pk}/entrance_try", **speaking("en")
        )

        assert error_body(response)["errors"][0]["detail"] == (
            "No entrance tries left for this session."
        )
        entry = AccessLogEntry.objects.get(event=AccessEvent.ENTRANCE_TRY)
        assert entry.detail == "Nu mai există încercări de intrare pentru această sesiune."

    def test_a_state_refusal_names_the_state_by_its_api_value(self, driver_client):
        session = ParkingSessionFactory(driver=driver_client.driver, state=State.ACTIVE)

        response = session_action(driver_client, session.pk, "cancel")
        assert error_body(response)["errors"][0]["code"] == "invalid_session_state"
        response = driver_client.post(
            f"/api/car_driver/parking_sessions/{session.pk}/cancel", **speaking("ro")
        )
        assert error_body(response)["errors"] == [
            {
                "code": "invalid_session_state",
                "detail": "Nu se poate anula o sesiune în starea active; trebuie să fie entering.",
                "attr": None,
            }
        ]


class TestTariffSummary:
    @pytest.mark.parametrize(
        ("accept_language", "summary"),
        [
            (
                "ro",
                "Primele 15 min gratuite, apoi 5,00 RON pentru fiecare oră începută, "
                "cel mult 40,00 RON pe zi",
            ),
            (
                "en",
                "First 15 min free, then 5.00 RON per started hour, at most 40.00 RON per day",
            ),
        ],
    )
    def test_the_summary_speaks_the_callers_language(self, driver_client, accept_language, summary):
        SecuredParkingFactory()

        response = driver_client.get(SECURED_PARKINGS_URL, **speaking(accept_language))

        assert response.status_code == 200
        assert response.json()["results"][0]["tariff"]["summary"] == summary
        # The numbers themselves stay the API's, whatever the language.
        assert response.json()["results"][0]["tariff"]["price_per_period"] == "5.00"

    @pytest.mark.parametrize(
        ("overrides", "summary"),
        [
            ({"free_minutes": 0, "daily_cap": None}, "5,00 RON pentru fiecare oră începută"),
            (
                {"free_minutes": 1, "period_minutes": 120, "daily_cap": None},
                "Primul minut gratuit, apoi 5,00 RON pentru fiecare interval început de 2 ore",
            ),
            (
                {"free_minutes": 20, "period_minutes": 1440, "daily_cap": None},
                "Primele 20 de min gratuite, apoi 5,00 RON pentru fiecare zi începută",
            ),
            (
                {"free_minutes": 0, "period_minutes": 15, "price_per_period": Decimal("2.5")},
                "2,50 RON pentru fiecare interval început de 15 min, cel mult 40,00 RON pe zi",
            ),
            (
                {"free_minutes": 0, "period_minutes": 20 * 1440, "daily_cap": None},
                "5,00 RON pentru fiecare interval început de 20 de zile",
            ),
        ],
    )
    def test_romanian_summaries_take_romanian_plurals(self, db, overrides, summary):
        from django.utils import translation

        tariff = TariffFactory(**overrides)

        with translation.override("ro"):
            assert tariff.summary == summary

    # What the summaries read before they were cached per language and tariff values.
    @pytest.mark.parametrize(
        ("fields", "english", "romanian"),
        [
            (
                (15, 60, "5.00", "40.00", "RON"),
                "First 15 min free, then 5.00 RON per started hour, at most 40.00 RON per day",
                "Primele 15 min gratuite, apoi 5,00 RON pentru fiecare oră începută, "
                "cel mult 40,00 RON pe zi",
            ),
            (
                (1, 120, "0.125", None, "EUR"),
                "First 1 min free, then 0.13 EUR per started 2 hours",
                "Primul minut gratuit, apoi 0,13 EUR pentru fiecare interval început de 2 ore",
            ),
            (
                (2, 1, "0.0050", "3.5", "RON"),
                "First 2 min free, then 0.01 RON per started 1 min, at most 3.50 RON per day",
                "Primele 2 min gratuite, apoi 0,01 RON pentru fiecare minut început, "
                "cel mult 3,50 RON pe zi",
            ),
            (
                (20, 1440, "1234.5", "12345.67", "RON"),
                "First 20 min free, then 1234.50 RON per started day, at most 12345.67 RON per day",
                "Primele 20 de min gratuite, apoi 1234,50 RON pentru fiecare zi începută, "
                "cel mult 12345,67 RON pe zi",
            ),
            (
                (21, 2880, "0.0250", None, "EUR"),
                "First 21 min free, then 0.03 EUR per started 2 days",
                "Primele 21 de min gratuite, apoi 0,03 EUR pentru fiecare interval început "
                "de 2 zile",
            ),
            (
                (0, 45, "0", "0.00", "RON"),
                "0.00 RON per started 45 min, at most 0.00 RON per day",
                "0,00 RON pentru fiecare interval început de 45 de min, cel mult 0,00 RON pe zi",
            ),
            (
                (101, 20 * 1440, "999.995", None, "RON"),
                "First 101 min free, then 1000.00 RON per started 20 days",
                "Primele 101 min gratuite, apoi 1000,00 RON pentru fiecare interval început "
                "de 20 de zile",
            ),
        ],
    )
    def test_summaries_read_as_before_in_both_languages_whatever_was_asked_first(
        self, fields, english, romanian
    ):
        from django.utils import translation

        free_minutes, period_minutes, price, cap, currency = fields
        tariff = Tariff(
            secured_parking=SecuredParking(name="P", currency=currency),
            free_minutes=free_minutes,
            period_minutes=period_minutes,
            price_per_period=Decimal(price),
            daily_cap=None if cap is None else Decimal(cap),
        )
        # Alternating languages: a summary remembered in one must not answer the other.
        for _ in range(2):
            with translation.override("ro"):
                assert tariff.summary == romanian
            with translation.override("en"):
                assert tariff.summary == english


def test_a_default_language_that_is_not_offered_stops_the_start():
    started = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={
            **os.environ,
            "DJANGO_LANGUAGE_CODE": "de",
            "DJANGO_SETTINGS_MODULE": "parking_api.settings",
        },
        capture_output=True,
        text=True,
        cwd=REPO,
    )

    assert started.returncode != 0
    assert "DJANGO_LANGUAGE_CODE must be one of ro, en, not 'de'." in started.stderr


@pytest.mark.django_db
class TestSignInAndSignUp:
    @pytest.mark.parametrize(
        ("accept_language", "lang", "heading"),
        [("ro-RO,ro;q=0.9", "ro", "Autentificați-vă în Secured Parking"),
         ("en-US,en;q=0.9", "en", "Sign in to Secured Parking")],
    )  # fmt: skip
    def test_the_sign_in_page_speaks_the_phones_language(
        self, client, accept_language, lang, heading
    ):
        response = client.get("/accounts/login/", **speaking(accept_language))

        assert response.status_code == 200
        page = response.content.decode()
        assert f'<html lang="{lang}">' in page
        assert f"<h1>{heading}</h1>" in page
        assert response["Content-Language"] == lang

    def test_a_failed_sign_in_is_explained_in_romanian(self, client, driver):
        response = client.post(
            "/accounts/login/",
            {"username": driver.email, "password": "wrong password"},
            **speaking("ro"),
        )

        assert response.status_code == 200
        [error] = response.context["form"].non_field_errors()
        assert error.startswith("Introduceți")
        assert error in response.content.decode()

    def test_the_signed_in_page_too(self, client, driver):
        client.force_login(driver)

        response = client.get("/accounts/signed-in/", **speaking("ro"))

        assert "<h1>Sunteți autentificat</h1>" in response.content.decode()

    def test_sign_up_refusals_are_translated_and_keep_their_codes(self, api_client, driver):
        weak = api_client.post(
            "/api/car_driver/accounts",
            {"email": "new@example.com", "password": "123"},
            format="json",
            **speaking("ro"),
        )
        taken = api_client.post(
            "/api/car_driver/accounts",
            {"email": driver.email, "password": "a long enough passphrase"},
            format="json",
            **speaking("ro"),
        )

        weak_details = {e["detail"] for e in error_body(weak)["errors"]}
        assert "Această parolă este prea scurtă. Trebuie să conțină cel puțin 8 caractere." in (
            weak_details
        )
        assert {e["attr"] for e in error_body(weak)["errors"]} == {"password"}
        assert error_body(taken)["errors"] == [
            {
                "code": "invalid",
                "detail": "Există deja un cont cu această adresă de email.",
                "attr": "email",
            }
        ]


@pytest.mark.django_db
class TestBackOffice:
    def choose(self, client, language: str, **headers):
        return client.post("/i18n/setlang/", {"language": language, "next": "/admin/"}, **headers)

    def test_an_operator_who_chooses_romanian_gets_it_over_the_browsers_language(
        self, superuser_client
    ):
        english = superuser_client.get("/admin/", **speaking("en"))
        assert "Site administration" in english.content.decode()

        chosen = self.choose(superuser_client, "ro", **speaking("en"))

        assert chosen.status_code == 302 and chosen["Location"] == "/admin/"
        cookie = chosen.cookies["django_language"]
        assert (cookie.value, bool(cookie["httponly"]), cookie["samesite"]) == ("ro", True, "Lax")
        page = superuser_client.get("/admin/", **speaking("en"))
        assert page["Content-Language"] == "ro"
        content = page.content.decode()
        assert "Administrare site" in content  # Django's own Romanian
        assert "Tablou de bord" in content  # ours
        assert 'value="en" lang="en">English</button>' in content  # and the way back

    def test_the_header_offers_the_other_language(self, superuser_client):
        page = superuser_client.get("/admin/", **speaking("en")).content.decode()

        assert 'action="/i18n/setlang/"' in page
        assert 'value="ro" lang="ro">Română</button>' in page
        assert 'value="en" lang="en">English</button>' not in page

    def test_lists_filters_and_actions_in_romanian(self, superuser_client):
        from tests.back_office import changelist_url

        ParkingSessionFactory()
        self.choose(superuser_client, "ro")

        url = changelist_url(ParkingSession) + f"?start_time__year={timezone.now().year}"
        page = superuser_client.get(url).content.decode()

        for text in (
            "Încheie sesiunile selectate…",  # an action of ours
            "Încercări rămase (intrare / ieșire)",  # a column of ours
            "Activă",  # a state's label
            "Toate datele",  # the date drill-down of large lists
            "Un id de sesiune (42)",  # the search help
            "Șofer",  # a field's name
            "sesiune de parcare",  # the model's
        ):
            assert text in page, text

    def test_an_action_confirms_and_reports_in_romanian(self, superuser_client):
        from tests.back_office import changelist_url

        sessions = [ParkingSessionFactory(), ParkingSessionFactory()]
        self.choose(superuser_client, "ro")
        selected = {"action": "cancel_sessions", "_selected_action": [s.pk for s in sessions]}

        asked = superuser_client.post(changelist_url(ParkingSession), {**selected, "index": 0})
        done = superuser_client.post(
            changelist_url(ParkingSession),
            {**selected, "confirm": "yes", "reason": "Probă"},
            follow=True,
        )

        assert "Anulează sesiuni de parcare" in asked.content.decode()
        assert "Motiv" in asked.content.decode()
        [message] = [str(m) for m in done.context["messages"]]
        assert message in {
            f"2 sesiuni anulate: #{a.pk}, #{b.pk}." for a, b in (sessions, sessions[::-1])
        }

    def test_the_dashboard_in_romanian(self, superuser_client):
        self.choose(superuser_client, "ro")

        page = superuser_client.get("/admin/dashboard/").content.decode()

        assert "sesiuni începute azi" in page
        assert "<title>Tablou de bord" in page


def test_the_language_picks_remembered_are_capped():
    from django.http import HttpResponse
    from django.test import RequestFactory

    from parking_api.middleware import MAX_LANGUAGE_PICKS, LanguageMiddleware

    middleware = LanguageMiddleware(lambda request: HttpResponse())
    headers = [f"x-{n},ro;q=0.5" for n in range(MAX_LANGUAGE_PICKS)] + ["en-GB,ro;q=0.5"]

    answers = [
        middleware(RequestFactory().get("/", HTTP_ACCEPT_LANGUAGE=header)) for header in headers
    ]

    assert len(middleware.picks) == MAX_LANGUAGE_PICKS
    # Past the cap a pair is still picked, only not remembered.
    assert [a["Content-Language"] for a in answers[-2:]] == ["ro", "en"]
