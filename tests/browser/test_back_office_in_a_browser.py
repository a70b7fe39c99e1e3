"""An operator's day in the back office, in a real (headless) Chromium."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from parking.models import AuditAction, ParkingSession, State
from tests.factories import (
    OperatorFactory,
    OperatorStaffFactory,
    ParkingSessionFactory,
    SecuredParkingFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct-horse-battery"  # noqa: S105 - the factories' test password


@pytest.fixture
def stuck_session() -> ParkingSession:
    """Maria's active session at Gara, run by Cluj Parking; her app died at the exit."""
    operator = OperatorFactory(name="Cluj Parking SRL")
    parking = SecuredParkingFactory(operator=operator, name="Gara", access_points=1)
    start = timezone.now() - timedelta(hours=1, minutes=10)
    return ParkingSessionFactory(
        secured_parking=parking,
        driver__email="maria@example.com",
        state=State.ACTIVE,
        start_time=start,
        smart_key__start_time=start,
    )


def log_in(page: Page, live_server, email: str) -> None:
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_contain_text(email)


def test_an_operator_finalizes_a_stuck_session_with_a_reason(
    live_server, new_page, screenshots, stuck_session
):
    ana = OperatorStaffFactory(
        operator=stuck_session.secured_parking.operator, email="ana@cluj-parking.ro"
    )
    page = new_page()
    log_in(page, live_server, ana.email)

    page.click("text=Parking sessions")
    page.fill("#searchbar", "maria@")
    page.press("#searchbar", "Enter")
    row = page.locator("#result_list tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Active")
    screenshots.take(page, "search")

    row.locator("input[name=_selected_action]").check()
    page.select_option("select[name=action]", "finalize_sessions")
    page.click("button[name=index]")
    expect(page.locator("#selected-sessions")).to_contain_text("maria@example.com")
    screenshots.take(page, "confirmation")
    page.click("input[type=submit][value='Finalize parking sessions']")
    # No reason, no action: the browser itself holds the form back.
    expect(page.locator("textarea[name=reason]:invalid")).to_have_count(1)
    expect(page.locator("#selected-sessions")).to_be_visible()
    page.fill("textarea[name=reason]", "App crashed at the exit; barrier lifted by hand")
    page.click("input[type=submit][value='Finalize parking sessions']")

    expect(page.locator(".messagelist")).to_contain_text(
        f"1 session finalized: #{stuck_session.pk}."
    )
    expect(page.locator("#result_list tbody tr")).to_contain_text("Finished")
    expect(page.locator("#result_list tbody tr")).to_contain_text("10.00 RON")
    screenshots.take(page, "finalized")

    page.click(f"#result_list a:text-is('{stuck_session.pk}')")
    trail = page.locator("#audit_entries-group")
    expect(trail).to_contain_text("App crashed at the exit; barrier lifted by hand")
    expect(trail).to_contain_text("ana@cluj-parking.ro")
    expect(trail).to_contain_text("Finalized")
    expect(trail).to_contain_text("active → finished")
    screenshots.take(page, "audit-trail")

    stuck_session.refresh_from_db()
    assert stuck_session.state == State.FINISHED
    assert stuck_session.audit_entries.get().action == AuditAction.FINALIZE


def test_staff_of_another_operator_cannot_see_the_session(
    live_server, new_page, screenshots, stuck_session
):
    other = OperatorStaffFactory(operator=OperatorFactory(name="Other Parking SA"))
    page = new_page()
    log_in(page, live_server, other.email)

    page.goto(f"{live_server.url}/admin/parking/parkingsession/?q=maria%40")
    expect(page.locator("#result_list tbody tr")).to_have_count(0)
    expect(page.locator("#changelist")).not_to_contain_text("maria@example.com")
    screenshots.take(page, "search-finds-nothing")

    response = page.goto(
        f"{live_server.url}/admin/parking/parkingsession/{stuck_session.pk}/change/"
    )
    assert response.status == 404
    screenshots.take(page, "direct-url-not-found")


def test_an_operator_reads_the_dashboard(live_server, new_page, screenshots, stuck_session):
    ana = OperatorStaffFactory(operator=stuck_session.secured_parking.operator)
    page = new_page()
    log_in(page, live_server, ana.email)

    page.click("#dashboard-link a")
    row = page.locator(f"#parking-{stuck_session.secured_parking.pk}")
    expect(row.locator(".open-sessions")).to_have_text(re.compile(r"1 / 100"))
    # The session started 70 minutes ago: yesterday, in the first 70 minutes of a day.
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    started_today = "1" if stuck_session.start_time >= midnight else "0"
    expect(row.locator(".started-today")).to_have_text(started_today)
    expect(page.locator("svg.hourly-chart rect.bar")).to_have_count(2 * 24)
    screenshots.take(page, "dashboard")
