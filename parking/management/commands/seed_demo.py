import argparse
from datetime import timedelta

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from parking.demo_data import (
    ADMIN_PASSWORD,
    API_DOCS_ORIGINS,
    DRIVER_PASSWORD,
    SESSION_AGE,
    STAFF_PASSWORD,
    DemoData,
    seed_demo,
)
from payments.exceptions import PaymentProviderUnavailable

API_ORIGIN = "http://127.0.0.1:8000"
API_PATH = "/api/car_driver"
MAX_TOKEN_HOURS = 24 * 365
# The walk-through reads a new session's id from the start's answer.
SESSION_ID_OF = (
    """python3 -c 'import json, sys; print(json.load(sys.stdin)["parking_session"]["id"])'"""
)


def hours_up_to_a_year(value: str) -> float:
    hours = float(value)
    # Written this way round so NaN fails too.
    if not 0 < hours <= MAX_TOKEN_HOURS:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most {MAX_TOKEN_HOURS}")
    return hours


class Command(BaseCommand):
    help = (
        "Create or reset demo data (Secured P 1, the mobile app's OAuth client, demo logins, "
        "driver@example.com's test card saved at Stripe and their open session, paid by a hold "
        "on it) and print a bearer token for that driver with a walk-through of a paid "
        "session. Needs Stripe (localstripe; make run starts it). Safe to run twice."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--force",
            action="store_true",
            help="Run even though DEBUG is off. The demo logins have published passwords.",
        )
        parser.add_argument(
            "--token-hours",
            type=hours_up_to_a_year,
            default=12,
            metavar="N",
            help="Lifetime of the printed access token, in hours (default: 12).",
        )
        parser.add_argument(
            "--docs-origin",
            action="append",
            dest="docs_origins",
            metavar="URL",
            help="Where the API docs are served, for their sign-in's redirect URI (repeat for "
            f"several; default: {' and '.join(API_DOCS_ORIGINS)}). Only with API_DOCS_SIGN_IN.",
        )
        parser.add_argument(
            "--api-origin",
            default=API_ORIGIN,
            metavar="URL",
            help=f"Where the API is served, for the printed commands (default: {API_ORIGIN}).",
        )

    def handle(
        self,
        *args,
        force: bool,
        token_hours: float,
        docs_origins: list[str] | None,
        api_origin: str,
        **options,
    ) -> None:
        if not settings.DEBUG and not force:
            raise CommandError(
                "Refusing to seed demo data with DEBUG off: it creates a superuser and drivers "
                "with published passwords. Use --force if this database really is a demo one."
            )
        try:
            demo = seed_demo(
                now=timezone.now(),
                token_lifetime=timedelta(hours=token_hours),
                api_docs_origins=docs_origins or API_DOCS_ORIGINS,
            )
        except (PaymentProviderUnavailable, requests.RequestException) as error:
            raise CommandError(
                f"Stripe at {settings.STRIPE_API_BASE or 'api.stripe.com'} did not save the "
                f"demo card or place its hold ({error}). Start localstripe on loopback and "
                "point STRIPE_API_BASE at it (make run does both)."
            ) from error
        self._report(demo, api_origin.rstrip("/"))

    def _report(self, demo: DemoData, api_origin: str) -> None:
        parking, application = demo.parking, demo.application
        lines = [
            self.style.SUCCESS("Demo data is ready."),
            f"Parking: {parking.name} (id {parking.pk}, {parking.currency}), {parking.address}",
            f"Tariff: {parking.tariff.summary}",
            "Access points:",
            *(f"  {ap.direction:<8} {ap.mac_address}  {ap.name}" for ap in demo.access_points),
            f"OAuth client id: {application.client_id} (public, PKCE, no consent screen)",
            f"Redirect URI: {application.redirect_uris}",
            *self._api_docs_lines(demo),
            "Logins:",
            f"  driver   {demo.driver.email} / {DRIVER_PASSWORD}"
            f"  (open session #{demo.session.pk}, {demo.session.state})",
            f"  driver   {demo.second_driver.email} / {DRIVER_PASSWORD}  (no session)",
            f"  operator {demo.admin.email} / {ADMIN_PASSWORD}  (superuser, /admin/)",
            f"  staff    {demo.staff.email} / {STAFF_PASSWORD}"
            f"  (staff of {demo.operator.name}, /admin/)",
            "",
            f"Card: {demo.driver.email} pays with {demo.card.brand.title()} •••• {demo.card.last4} "
            f"(Stripe's test card, saved at {settings.STRIPE_API_BASE or 'Stripe'})",
            "",
            f"Bearer token for {demo.driver.email}, valid until "
            f"{demo.access_token.expires.isoformat(timespec='seconds')}:",
            f"curl -H 'Authorization: Bearer {demo.raw_access_token}' "
            f"{api_origin}{API_PATH}/parking_sessions/current",
            "",
            *self._walk_through(demo, api_origin),
        ]
        self.stdout.write("\n".join(lines))

    def _walk_through(self, demo: DemoData, api_origin: str) -> list[str]:
        """The commands of one whole paid session, to paste into a shell."""
        session, parking = demo.session, demo.parking
        assert session.payment is not None  # the demo parking charges by card
        due = f"{session.charge_for_stay(timezone.now())} {session.currency}"
        held = f"{session.payment.hold_amount} {session.payment.currency}"
        minutes = SESSION_AGE // timedelta(minutes=1)
        this, new = f"$API/parking_sessions/{session.pk}", "$API/parking_sessions/$S"
        start = (
            "curl -s -X POST -H \"$AUTH\" -H 'Content-Type: application/json' "
            f"-d '{{\"secured_parking_id\": {parking.pk}}}' $API/parking_sessions"
        )
        return [
            "Walk-through: a whole paid session (paste into a shell):",
            f"  TOKEN={demo.raw_access_token}",
            f'  AUTH="Authorization: Bearer $TOKEN" API={api_origin}{API_PATH}',
            f"  # Session #{session.pk} started {minutes} min ago: its start held {held} on the "
            "card, then it entered.",
            f'  curl -H "$AUTH" {this}/payment',
            f"  # Exit fixes {due}; a job captures it from the hold and releases the rest (on "
            "PostgreSQL the job worker, a moment later).",
            f'  curl -X POST -H "$AUTH" {this}/exit',
            f'  curl -X POST -H "$AUTH" {this}/finalize',
            f'  curl -H "$AUTH" {this}/payment',
            f'  curl -H "$AUTH" {this}/receipt',
            f"  curl -H \"$AUTH\" -H 'Accept: text/html' -H 'Accept-Language: ro' {this}/receipt",
            "  # The next one from its start (a new hold): enter, exit, finalize. Within the "
            f"{parking.tariff.free_minutes} free minutes it costs nothing: the hold is released.",
            f"  S=$({start} | {SESSION_ID_OF})",
            *(f'  curl -X POST -H "$AUTH" {new}/{step}' for step in ("enter", "exit", "finalize")),
            f'  curl -H "$AUTH" {new}/payment',
            f'  curl -H "$AUTH" {new}/receipt',
        ]

    def _api_docs_lines(self, demo: DemoData) -> list[str]:
        if demo.api_docs_client is None:
            return ["API docs sign-in: off (API_DOCS_SIGN_IN)"]
        return [
            f"API docs: /api/docs/, Authorize signs in as {demo.api_docs_client.client_id} "
            f"(PKCE), back to {demo.api_docs_client.redirect_uris}"
        ]
