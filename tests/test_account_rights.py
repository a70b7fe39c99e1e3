"""A driver deletes their account (password again; refused while a session is open) and
exports everything held about them, through the API with real tokens; old personal data
is anonymised by a daily job (README, "Account rights and personal data")."""

import json
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.contrib.messages import get_messages
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from oauth2_provider.models import AccessToken, Grant, RefreshToken

from accounts.models import User
from accounts.services import AccountDeletionRefused
from parking.models import AuditAction, IdempotencyRecord, ParkingSession, SessionAuditEntry, State
from parking.services.accounts import anonymise_old_personal_data
from parking.services.back_office import cancel_by_operator
from parking.tasks import anonymise_old_personal_data_job
from smart_keys.models import AccessLogEntry, SmartKey
from tests.api import (
    API,
    CURRENT_URL,
    SIGN_UP_URL,
    DriverClient,
    act,
    error_code,
    error_detail,
    field_errors,
    json_body,
    new_session,
    start_session,
)
from tests.back_office import change_url, changelist_url, listed
from tests.factories import (
    AccessTokenFactory,
    DriverFactory,
    MobileApplicationFactory,
    OperatorFactory,
    OperatorStaffFactory,
    ParkingSessionFactory,
    SecuredParkingFactory,
    SuperuserFactory,
)
from tests.jobs import defer_periodic_now, statuses, wait_until
from tests.test_oauth_flow import (
    authorize_url,
    callback_params,
    exchange_code,
    new_verifier,
    refresh,
)

ACCOUNT_URL = f"{API}/account"
EXPORT_URL = f"{API}/account/export"
PASSWORD = "correct-horse-battery"  # DriverFactory's

pytestmark = pytest.mark.django_db


def delete_account(client, password=PASSWORD, **headers):
    body = {} if password is None else {"password": password}
    return client.delete(ACCOUNT_URL, body, format="json", **headers)


def finished_journey(client, parking) -> int:
    """A whole stay through the API (commands issued and tries logged); its session id."""
    session_id = new_session(client, parking)["parking_session"]["id"]
    act(client, session_id, "entrance_try")
    act(client, session_id, "enter")
    act(client, session_id, "exit")
    act(client, session_id, "exit_try")
    act(client, session_id, "finalize")
    return session_id


def oauth_tokens_of(driver) -> dict:
    """A real code + PKCE sign-in of ``driver``: the token endpoint's answer."""
    MobileApplicationFactory()
    browser = Client()
    browser.force_login(driver)
    verifier = new_verifier()
    code = callback_params(browser.get(authorize_url(verifier)))["code"]
    return json_body(exchange_code(Client(), code, verifier), 200)


class OutstandingBalance(AccountDeletionRefused):
    code = "outstanding_balance"


def refuse_for_money_owed(*, user, now):
    raise OutstandingBalance("You owe 12.00 RON; pay it before deleting your account.")


@pytest.fixture
def parking():
    return SecuredParkingFactory(access_points=2)


class TestDeletingTheAccount:
    def test_it_revokes_every_token_and_erases_the_user_but_keeps_the_sessions_anonymised(
        self, driver, parking
    ):
        tokens = oauth_tokens_of(driver)
        client = DriverClient(driver)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
        session_id = finished_journey(client, parking)
        amount = ParkingSession.objects.get(pk=session_id).amount
        logged = AccessLogEntry.objects.filter(parking_session_id=session_id).count()
        assert logged >= 3  # commands issued, tries

        response = delete_account(client)

        assert response.status_code == 204, response.content
        assert not User.objects.filter(pk=driver.pk).exists()
        assert not AccessToken.objects.exists()
        assert not RefreshToken.objects.exists()
        session = ParkingSession.objects.get(pk=session_id)
        assert (session.driver_id, session.state, session.amount) == (None, State.FINISHED, amount)
        assert SmartKey.objects.get(pk=session.smart_key_id).driver_id is None
        entries = AccessLogEntry.objects.filter(parking_session_id=session_id)
        assert entries.count() == logged
        assert not entries.filter(driver__isnull=False).exists()

    def test_the_deleted_accounts_tokens_no_longer_work(self, driver, parking):
        tokens = oauth_tokens_of(driver)
        client = DriverClient(driver)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")

        assert delete_account(client).status_code == 204

        assert client.get(CURRENT_URL).status_code == 401
        assert client.get(EXPORT_URL).status_code == 401
        refreshed = refresh(Client(), tokens["refresh_token"])
        assert refreshed.status_code == 400, refreshed.content
        assert refreshed.json()["error"] == "invalid_grant"

    def test_unexchanged_authorization_codes_go_too(self, driver, driver_client):
        MobileApplicationFactory()
        browser = Client()
        browser.force_login(driver)
        verifier = new_verifier()
        code = callback_params(browser.get(authorize_url(verifier)))["code"]
        assert Grant.objects.filter(user=driver).exists()

        assert delete_account(driver_client).status_code == 204

        assert not Grant.objects.exists()
        assert exchange_code(Client(), code, verifier).status_code == 400

    def test_the_email_can_sign_up_again_as_a_new_account(self, driver, driver_client, api_client):
        assert delete_account(driver_client).status_code == 204

        response = api_client.post(
            SIGN_UP_URL, {"email": driver.email, "password": "another-horse-battery"}, format="json"
        )

        assert json_body(response, 201)["id"] != driver.pk

    def test_a_wrong_password_is_refused_and_changes_nothing(self, driver, driver_client, parking):
        session_id = finished_journey(driver_client, parking)

        response = delete_account(driver_client, password="not-the-password")

        assert response.status_code == 400, response.content
        assert field_errors(response) == {"password": ["The password is wrong."]}
        assert error_code(response) == "wrong_password"
        assert User.objects.filter(pk=driver.pk).exists()
        assert ParkingSession.objects.get(pk=session_id).driver_id == driver.pk
        assert AccessLogEntry.objects.filter(driver=driver).exists()
        assert driver_client.get(f"{API}/parking_sessions").status_code == 200

    @pytest.mark.parametrize(
        ("body", "field"),
        [({}, "password"), ({"password": PASSWORD, "reason": "x"}, "reason")],
        ids=["no password", "an unknown field"],
    )
    def test_a_body_without_the_password_or_with_more_is_refused(
        self, driver, driver_client, body, field
    ):
        response = driver_client.delete(ACCOUNT_URL, body, format="json")

        assert response.status_code == 400, response.content
        assert field in field_errors(response)
        assert User.objects.filter(pk=driver.pk).exists()

    def test_an_open_session_refuses_it_with_409_and_changes_nothing(self, driver, driver_client):
        session = ParkingSessionFactory(driver=driver, state=State.ACTIVE)

        response = delete_account(driver_client)

        assert response.status_code == 409, response.content
        assert error_code(response) == "open_session_exists"
        assert response.json()["parking_session_id"] == session.pk
        assert f"#{session.pk}" in error_detail(response)
        assert User.objects.filter(pk=driver.pk).exists()
        assert ParkingSession.objects.get(pk=session.pk).driver_id == driver.pk
        assert driver_client.get(CURRENT_URL).status_code == 200

    def test_the_refusals_speak_the_drivers_language_and_keep_their_codes(
        self, driver, driver_client
    ):
        ParkingSessionFactory(driver=driver, state=State.ACTIVE)

        wrong = driver_client.delete(
            ACCOUNT_URL, {"password": "nope"}, format="json", HTTP_ACCEPT_LANGUAGE="ro"
        )
        refused = delete_account(driver_client, HTTP_ACCEPT_LANGUAGE="ro")

        assert field_errors(wrong) == {"password": ["Parola este greșită."]}
        assert error_code(refused) == "open_session_exists"
        assert error_detail(refused).startswith("Aveți o sesiune de parcare deschisă")

    def test_a_session_left_entering_past_its_deadline_does_not_hold_it(
        self, driver, driver_client, settings
    ):
        stale = ParkingSessionFactory(
            driver=driver,
            state=State.ENTERING,
            start_time=timezone.now() - settings.PARKING_ENTERING_TIMEOUT - timedelta(seconds=1),
        )

        assert delete_account(driver_client).status_code == 204

        stale.refresh_from_db()
        assert (stale.state, stale.driver_id) == (State.CANCELLED, None)

    def test_an_apps_own_check_refuses_it_with_its_code(self, driver, driver_client, settings):
        # How an app that records debts (payments) refuses while money is owed.
        settings.ACCOUNT_DELETION_CHECKS = [
            *settings.ACCOUNT_DELETION_CHECKS,
            f"{__name__}.refuse_for_money_owed",
        ]

        response = delete_account(driver_client)

        assert response.status_code == 409, response.content
        assert error_code(response) == "outstanding_balance"
        assert User.objects.filter(pk=driver.pk).exists()

    def test_back_office_accounts_are_not_deleted_through_the_api(self):
        staff = OperatorStaffFactory()
        client = DriverClient(staff)

        response = delete_account(client)

        assert response.status_code == 409, response.content
        assert error_code(response) == "back_office_account"
        assert User.objects.filter(pk=staff.pk).exists()

    def test_other_drivers_keep_everything(self, driver_client, make_driver_client, parking):
        other = make_driver_client()
        session_id = finished_journey(other, parking)
        start_session(other, parking, idempotency_key="other-key")

        assert delete_account(driver_client).status_code == 204

        assert ParkingSession.objects.get(pk=session_id).driver_id == other.driver.pk
        assert AccessLogEntry.objects.filter(driver=other.driver).exists()
        assert IdempotencyRecord.objects.filter(driver=other.driver).exists()
        assert other.get(CURRENT_URL).status_code == 200

    def test_its_queries_do_not_grow_with_the_sessions(self, make_driver_client, parking):
        def queries_to_delete(sessions: int) -> int:
            client = make_driver_client()
            for _ in range(sessions):
                finished_journey(client, parking)
            with CaptureQueriesContext(connection) as captured:
                assert delete_account(client).status_code == 204
            return len(captured)

        ContentType.objects.get_for_model(User)  # cached for the process after its first read
        one, five = queries_to_delete(1), queries_to_delete(5)

        assert one == five, (one, five)
        # Token, password, lock, the deletion checks (open session, debt, payment in
        # progress), five UPDATEs, the Stripe customers to delete, the token DELETEs, then
        # Django's collector reading each table that points at the user once (cards,
        # payments and the refunds a staff member asked for included), and the DELETEs.
        assert one <= 45, one


def test_the_database_refuses_an_open_session_without_a_driver():
    session = ParkingSessionFactory(state=State.ACTIVE)

    with pytest.raises(IntegrityError), transaction.atomic():
        ParkingSession.objects.filter(pk=session.pk).update(driver=None)


class TestExportingTheAccount:
    def test_it_holds_the_profile_sessions_keys_access_log_and_token_metadata(
        self, driver, driver_client, parking
    ):
        session_id = finished_journey(driver_client, parking)
        start_session(driver_client, parking, idempotency_key="start-1")
        tokens = oauth_tokens_of(driver)

        export = json_body(driver_client.get(EXPORT_URL), 200)

        assert export["profile"]["email"] == driver.email
        assert export["profile"]["id"] == driver.pk
        sessions = {body["parking_session"]["id"]: body for body in export["parking_sessions"]}
        assert len(sessions) == 2
        assert sessions[session_id]["parking_session"]["state"] == "finished"
        assert sessions[session_id]["smart_key"]["secured_parking_id"] == parking.pk
        assert {entry["parking_session_id"] for entry in export["access_log"]} == set(sessions)
        assert len(export["access_log"]) == AccessLogEntry.objects.filter(driver=driver).count()
        oauth = export["oauth_tokens"]
        assert len(oauth["access_tokens"]) == 2  # the client's and the sign-in's
        assert [token["application"] for token in oauth["refresh_tokens"]] == ["Parking mobile app"]
        assert [record["key"] for record in export["idempotency_keys"]] == ["start-1"]
        text = json.dumps(export)
        for secret in (driver_client.access_token.raw_token, *tokens.values()):
            if isinstance(secret, str) and len(secret) > 20:
                assert secret not in text
        assert driver.password not in text

    def test_it_holds_nothing_of_other_drivers(self, driver_client, make_driver_client, parking):
        other = make_driver_client()
        finished_journey(other, parking)

        export = json_body(driver_client.get(EXPORT_URL), 200)

        assert export["parking_sessions"] == []
        assert export["access_log"] == []
        assert export["back_office_actions"] == []
        assert len(export["oauth_tokens"]["access_tokens"]) == 1

    def test_it_takes_the_same_queries_for_one_session_or_five(self, make_driver_client, parking):
        def queries_to_export(sessions: int) -> int:
            client = make_driver_client()
            for _ in range(sessions):
                finished_journey(client, parking)
            with CaptureQueriesContext(connection) as captured:
                body = json_body(client.get(EXPORT_URL), 200)
            assert len(body["parking_sessions"]) == sessions
            return len(captured)

        one, five = queries_to_export(1), queries_to_export(5)

        assert one == five, (one, five)
        assert one <= 10, one


class TestOldPersonalData:
    def test_closed_sessions_and_log_rows_past_the_retention_lose_their_driver(
        self, driver, settings
    ):
        settings.PERSONAL_DATA_RETENTION = timedelta(days=30)
        now = timezone.now()
        old = ParkingSessionFactory(
            driver=driver,
            state=State.FINISHED,
            start_time=now - timedelta(days=31, hours=2),
            end_time=now - timedelta(days=31),
        )
        recent = ParkingSessionFactory(
            driver=driver,
            state=State.FINISHED,
            start_time=now - timedelta(days=29, hours=2),
            end_time=now - timedelta(days=29),
        )
        # Open for longer than the retention (a forgotten car): kept, it is not closed.
        still_open = ParkingSessionFactory(
            driver=driver, state=State.ACTIVE, start_time=now - timedelta(days=40)
        )
        old_entry = _log_entry(old, created_at=now - timedelta(days=31, hours=1))
        recent_entry = _log_entry(recent, created_at=now - timedelta(days=29, hours=1))

        anonymised = anonymise_old_personal_data(now=now)

        assert (anonymised.parking_sessions, anonymised.smart_keys) == (1, 1)
        assert anonymised.access_log_entries == 1
        drivers = dict(ParkingSession.objects.values_list("pk", "driver_id"))
        assert drivers == {old.pk: None, recent.pk: driver.pk, still_open.pk: driver.pk}
        assert SmartKey.objects.get(pk=old.smart_key_id).driver_id is None
        assert SmartKey.objects.get(pk=recent.smart_key_id).driver_id == driver.pk
        assert AccessLogEntry.objects.get(pk=old_entry.pk).driver_id is None
        assert AccessLogEntry.objects.get(pk=recent_entry.pk).driver_id == driver.pk
        assert User.objects.filter(pk=driver.pk).exists()

    def test_a_second_run_changes_nothing(self, settings):
        settings.PERSONAL_DATA_RETENTION = timedelta(days=1)
        now = timezone.now()
        ParkingSessionFactory(
            state=State.CANCELLED,
            start_time=now - timedelta(days=3),
            end_time=now - timedelta(days=3),
        )

        assert anonymise_old_personal_data(now=now).parking_sessions == 1
        assert anonymise_old_personal_data(now=now).parking_sessions == 0

    @pytest.mark.postgres
    def test_the_worker_runs_it(self, job_worker):
        now = timezone.now()
        old = ParkingSessionFactory(
            state=State.FINISHED,
            start_time=now - timedelta(days=3 * 365 + 2),
            end_time=now - timedelta(days=3 * 365 + 1),
        )
        job_worker()
        defer_periodic_now(anonymise_old_personal_data_job)

        wait_until(
            lambda: "succeeded" in statuses("parking.anonymise_old_personal_data"),
            what="the anonymisation",
        )
        assert ParkingSession.objects.get(pk=old.pk).driver_id is None

    def test_the_retention_comes_from_the_environment(self, tmp_path):
        import subprocess
        import sys

        code = "from django.conf import settings; print(settings.PERSONAL_DATA_RETENTION.days)"
        env = {"DJANGO_SETTINGS_MODULE": "parking_api.settings", "DJANGO_DEBUG": "1"}
        outputs = [
            subprocess.run(
                [sys.executable, "-c", f"import django; django.setup(); {code}"],
                env={**_base_env(), **env, **extra},
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            for extra in ({}, {"PERSONAL_DATA_RETENTION_DAYS": "400"})
        ]

        assert outputs == ["1095", "400"]


def _base_env() -> dict[str, str]:
    import os

    return {
        key: value for key, value in os.environ.items() if key != "PERSONAL_DATA_RETENTION_DAYS"
    }


def _log_entry(session, *, created_at) -> AccessLogEntry:
    return AccessLogEntry.objects.create(
        created_at=created_at,
        event="command_issued",
        result="issued",
        direction="entrance",
        driver_id=session.driver_id,
        secured_parking_id=session.secured_parking_id,
        parking_session_id=session.pk,
        smart_key_id=session.smart_key_id,
    )


def test_a_deleted_driver_with_a_token_of_a_deleted_account_cannot_sign_in_again():
    # AccessTokenFactory rows of a deleted account are gone with it, not left unattached.
    driver = DriverFactory()
    AccessTokenFactory(user=driver)
    client = DriverClient(driver)

    assert delete_account(client).status_code == 204
    assert not AccessToken.objects.filter(user_id=driver.pk).exists()


@pytest.fixture(scope="module")
def schema():
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


class TestTheSchema:
    def test_deleting_takes_the_password_in_its_body_and_may_answer_409(self, schema):
        operation = schema["paths"][ACCOUNT_URL]["delete"]

        assert operation["operationId"] == "deleteAccount"
        body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        component = schema["components"]["schemas"][body.rsplit("/", 1)[1]]
        assert component["required"] == ["password"]
        assert {"204", "400", "401", "409", "413", "429"} <= set(operation["responses"])
        codes = operation["x-error-codes"]
        assert {"wrong_password", "required", "parse_error"} <= set(codes["400"])
        assert codes["409"] == ["back_office_account", "open_session_exists", "payment_in_progress"]
        assert codes["402"] == ["outstanding_balance"]

    def test_exporting_is_described(self, schema):
        operation = schema["paths"][EXPORT_URL]["get"]

        assert operation["operationId"] == "exportAccount"
        assert "200" in operation["responses"]


def test_the_anonymisation_runs_daily():
    from procrastinate.contrib.django import app

    schedules = {
        task.task.name: task.cron for task in app.periodic_registry.periodic_tasks.values()
    }
    assert schedules["parking.anonymise_old_personal_data"] == "29 2 * * *"


class TestDeletionRequestsInTheBackOffice:
    """A superuser carries out a deletion request made outside the app, audited."""

    @pytest.fixture
    def superuser(self):
        return SuperuserFactory(email="dpo@parking.example")

    @pytest.fixture
    def admin_client(self, superuser) -> Client:
        client = Client()
        client.force_login(superuser)
        return client

    def post_action(self, client, users, **form):
        data = {"action": "delete_driver_accounts", "_selected_action": [u.pk for u in users]}
        return client.post(changelist_url(User), {**data, **form})

    def test_it_first_asks_for_the_requests_reference_on_a_page_listing_the_accounts(
        self, admin_client, driver
    ):
        response = self.post_action(admin_client, [driver])

        assert response.status_code == 200
        assert driver.email in response.content.decode()
        assert User.objects.filter(pk=driver.pk).exists()

    def test_without_a_reason_nothing_happens(self, admin_client, driver):
        response = self.post_action(admin_client, [driver], confirm="yes", reason="  ")

        assert response.status_code == 200
        assert User.objects.filter(pk=driver.pk).exists()
        assert not SessionAuditEntry.objects.exists()

    def test_confirmed_it_deletes_the_account_and_audits_who_when_and_why(
        self, admin_client, superuser, driver, driver_client, parking
    ):
        session_id = finished_journey(driver_client, parking)

        response = self.post_action(
            admin_client, [driver], confirm="yes", reason="Request by email, ticket 4411"
        )

        assert response.status_code == 302
        assert not User.objects.filter(pk=driver.pk).exists()
        assert ParkingSession.objects.get(pk=session_id).driver_id is None
        assert driver_client.get(CURRENT_URL).status_code == 401
        entry = SessionAuditEntry.objects.get()
        assert (entry.actor, entry.action, entry.session) == (
            superuser,
            AuditAction.DELETE_ACCOUNT,
            None,
        )
        assert entry.reason == "Request by email, ticket 4411"
        assert entry.details["account_id"] == driver.pk
        assert entry.details["parking_sessions"] == 1
        assert driver.email not in json.dumps(entry.details)
        messages = [str(m) for m in get_messages(response.wsgi_request)]
        assert messages == [
            f"Account #{driver.pk} deleted. Kept anonymised: parking sessions: 1, "
            f"access-log entries: {entry.details['access_log_entries']}."
        ]

    def test_a_refused_account_is_reported_and_does_not_stop_the_others(self, admin_client):
        parked, done = DriverFactory(), DriverFactory()
        ParkingSessionFactory(driver=parked, state=State.ACTIVE)

        response = self.post_action(admin_client, [parked, done], confirm="yes", reason="Ticket 9")

        messages = [str(m) for m in get_messages(response.wsgi_request)]
        assert messages[0].startswith(f"Account #{parked.pk}: You have an open parking session")
        assert User.objects.filter(pk=parked.pk).exists()
        assert not User.objects.filter(pk=done.pk).exists()
        assert SessionAuditEntry.objects.get().details["account_id"] == done.pk

    def test_operator_staff_cannot_do_it(self, driver):
        staff = OperatorStaffFactory()
        client = Client()
        client.force_login(staff)

        response = self.post_action(client, [driver], confirm="yes", reason="Ticket 1")

        assert response.status_code == 403
        assert User.objects.filter(pk=driver.pk).exists()

    def test_the_back_office_history_keeps_its_entries_without_the_email(
        self, admin_client, driver
    ):
        admin_client.post(
            change_url(driver),
            {"email": driver.email, "first_name": "Ana", "last_name": "Pop", "is_active": "on",
             "date_joined_0": "2026-01-01", "date_joined_1": "10:00:00"},
        )  # fmt: skip
        assert LogEntry.objects.filter(object_id=str(driver.pk)).exists()

        self.post_action(admin_client, [driver], confirm="yes", reason="Ticket 2")

        reprs = set(LogEntry.objects.filter(object_id=str(driver.pk)).values_list("object_repr"))
        assert reprs == {(f"Deleted account #{driver.pk}",)}

    def test_account_deletions_are_in_the_audit_list_for_superusers_only(
        self, admin_client, driver
    ):
        self.post_action(admin_client, [driver], confirm="yes", reason="Ticket 3")
        operator = OperatorFactory()
        staff_session = ParkingSessionFactory(secured_parking__operator=operator)
        staff = OperatorStaffFactory(operator=operator)
        cancel_by_operator(session=staff_session, actor=staff, reason="Stuck", now=timezone.now())
        staff_client = Client()
        staff_client.force_login(staff)

        everything = listed(admin_client.get(changelist_url(SessionAuditEntry)))
        theirs = listed(staff_client.get(changelist_url(SessionAuditEntry)))

        assert {entry.action for entry in everything} == {
            AuditAction.DELETE_ACCOUNT,
            AuditAction.CANCEL,
        }
        assert [entry.action for entry in theirs] == [AuditAction.CANCEL]
