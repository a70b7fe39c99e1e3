"""A developer signs in from Swagger UI (/api/docs/) in a real (headless) Chromium, with the
docs' own OAuth client (authorization code + PKCE), and calls the API from the page."""

import pytest
from playwright.sync_api import expect

from parking.demo_data import DRIVER_EMAIL, DRIVER_PASSWORD
from tests.api import enable_api_docs_sign_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def docs_sign_in(settings, live_server, localstripe):
    return enable_api_docs_sign_in(settings, live_server.url)


def test_a_developer_signs_in_from_swagger_ui_and_reads_the_current_session(
    live_server, new_page, screenshots, docs_sign_in
):
    page = new_page()
    page.goto(f"{live_server.url}/api/docs/")
    page.click("button.authorize")
    oauth2 = page.locator(".auth-container").filter(has_text="authorizationCode")
    expect(oauth2.locator("input[data-name=clientId]")).to_have_value("parking-api-docs")
    screenshots.take(page, "authorize-dialog")

    with page.expect_popup() as opened:
        oauth2.locator("button.authorize").click()
    sign_in = opened.value
    sign_in.wait_for_selector("#id_username")
    screenshots.take(sign_in, "sign-in-page")
    sign_in.fill("#id_username", DRIVER_EMAIL)
    sign_in.fill("#id_password", DRIVER_PASSWORD)
    sign_in.click("button[type=submit]")
    sign_in.wait_for_event("close")

    expect(oauth2.locator("button", has_text="Logout")).to_be_visible()
    expect(oauth2).to_contain_text("Authorized")
    screenshots.take(page, "signed-in")
    oauth2.locator("button.btn-done").click()

    operation = page.locator("#operations-parking_sessions-getCurrentParkingSession")
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    operation.locator("button.execute").click()
    status = operation.locator(".live-responses-table .response .response-col_status")
    expect(status).to_have_text("200")
    expect(operation.locator(".live-responses-table")).to_contain_text(
        f'"id": {docs_sign_in.session.pk}'
    )
    screenshots.take(page, "current-session")
