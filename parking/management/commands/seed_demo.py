import argparse
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from parking.demo_data import (
    ADMIN_PASSWORD,
    API_DOCS_ORIGINS,
    DRIVER_PASSWORD,
    STAFF_PASSWORD,
    DemoData,
    seed_demo,
)

CURRENT_SESSION_URL = "http://127.0.0.1:8000/api/car_driver/parking_sessions/current"
MAX_TOKEN_HOURS = 24 * 365


def hours_up_to_a_year(value: str) -> float:
    hours = float(value)
    # Written this way round so NaN fails too.
    if not 0 < hours <= MAX_TOKEN_HOURS:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most {MAX_TOKEN_HOURS}")
    return hours


class Command(BaseCommand):
    help = (
        "Create or reset demo data (Secured P 1, the mobile app's OAuth client, demo logins, "
        "an open session) and print a bearer token for driver@example.com. Safe to run twice."
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

    def handle(
        self,
        *args,
        force: bool,
        token_hours: float,
        docs_origins: list[str] | None,
        **options,
    ) -> None:
        if not settings.DEBUG and not force:
            raise CommandError(
                "Refusing to seed demo data with DEBUG off: it creates a superuser and drivers "
                "with published passwords. Use --force if this database really is a demo one."
            )
        demo = seed_demo(
            now=timezone.now(),
            token_lifetime=timedelta(hours=token_hours),
            api_docs_origins=docs_origins or API_DOCS_ORIGINS,
        )
        self._report(demo)

    def _report(self, demo: DemoData) -> None:
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
            f"Bearer token for {demo.driver.email}, valid until "
            f"{demo.access_token.expires.isoformat(timespec='seconds')}:",
            f"curl -H 'Authorization: Bearer {demo.raw_access_token}' {CURRENT_SESSION_URL}",
        ]
        self.stdout.write("\n".join(lines))

    def _api_docs_lines(self, demo: DemoData) -> list[str]:
        if demo.api_docs_client is None:
            return ["API docs sign-in: off (API_DOCS_SIGN_IN)"]
        return [
            f"API docs: /api/docs/, Authorize signs in as {demo.api_docs_client.client_id} "
            f"(PKCE), back to {demo.api_docs_client.redirect_uris}"
        ]
