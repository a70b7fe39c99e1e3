"""Receipts of finished sessions: the operator's legal name and tax id, the parking, the
times, the tariff agreed at entry, the amount with its VAT, and the payment; as JSON, and the
same receipt as a printable page in the request's language (errors stay JSON)."""

import re
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import formats, timezone

from parking.models import ParkingSession, State
from payments.models import PaymentState
from tests.api import DriverClient, act, error_code, json_body, new_session, session_url
from tests.factories import (
    OperatorFactory,
    ParkingSessionFactory,
    SecuredParkingFactory,
    paid_by,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def finished(driver_client):
    operator = OperatorFactory(legal_name="Demo Parking SRL", tax_id="RO12345678")
    parking = SecuredParkingFactory(operator=operator, address="Strada Exemplu 1")
    session_id = new_session(driver_client, parking)["parking_session"]["id"]
    act(driver_client, session_id, "enter")
    ParkingSession.objects.filter(pk=session_id).update(
        start_time=timezone.now() - timedelta(minutes=70)
    )
    act(driver_client, session_id, "exit")
    act(driver_client, session_id, "finalize")
    return ParkingSession.objects.get(pk=session_id)


def test_the_receipt_names_the_seller_the_stay_the_tariff_and_the_vat(driver_client, finished):
    body = json_body(driver_client.get(session_url(finished.pk, "receipt")), 200)

    assert body["operator"] == {
        "name": finished.secured_parking.operator.name,
        "legal_name": "Demo Parking SRL",
        "tax_id": "RO12345678",
    }
    assert body["secured_parking"]["address"] == "Strada Exemplu 1"
    assert (body["amount"], body["vat_rate"], body["vat_amount"], body["amount_without_vat"]) == (
        "10.00",
        "0.2100",
        "1.74",
        "8.26",
    )
    assert body["tariff"]["price_per_period"] == "5.0000"
    assert body["tariff_summary"].startswith("First 15 min free")
    assert body["payment"] is None
    assert Decimal(body["amount_without_vat"]) + Decimal(body["vat_amount"]) == Decimal("10.00")


def test_an_open_session_has_no_receipt_yet(driver_client):
    session_id = new_session(driver_client, SecuredParkingFactory())["parking_session"]["id"]

    response = driver_client.get(session_url(session_id, "receipt"))

    assert response.status_code == 404
    assert error_code(response) == "not_found"
    assert "finished" in response.json()["errors"][0]["detail"]


def test_another_drivers_receipt_is_not_found(make_driver_client, finished):
    other = make_driver_client()

    assert other.get(session_url(finished.pk, "receipt")).status_code == 404


def receipt_page(client, session_id: int, language: str = "en", **headers):
    return client.get(
        session_url(session_id, "receipt"),
        HTTP_ACCEPT="text/html",
        HTTP_ACCEPT_LANGUAGE=language,
        **headers,
    )


def page_text(response) -> str:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/html; charset=utf-8"
    return response.content.decode()


def test_the_printable_receipt_is_the_same_receipt_as_a_page(driver_client, finished):
    body = json_body(driver_client.get(session_url(finished.pk, "receipt")), 200)

    page = page_text(receipt_page(driver_client, finished.pk))

    assert f"Receipt no. {body['number']}" in page
    assert "Demo Parking SRL" in page and "Tax id (CUI): RO12345678" in page
    assert finished.secured_parking.name in page and "Strada Exemplu 1" in page
    assert f"#{finished.pk}" in page
    assert body["tariff_summary"] in page
    for label, amount in [
        ("Amount without VAT", "8.26"),
        ("VAT 21%", "1.74"),
        ("Total, VAT included", "10.00"),
    ]:
        assert re.search(rf"{re.escape(label)}</th><td>{amount} RON</td>", page), label
    start = timezone.localtime(finished.start_time)
    assert formats.date_format(start, "DATETIME_FORMAT") in page
    assert 'id="payment"' not in page  # a parking that does not charge by card


def test_the_page_speaks_the_requests_language(driver_client, finished):
    page = page_text(receipt_page(driver_client, finished.pk, "ro-RO,ro;q=0.9"))

    assert '<html lang="ro">' in page
    assert f"Chitanța nr. {finished.pk:08d}" in page
    assert "Cod fiscal (CUI): RO12345678" in page
    assert re.search(r"TVA 21%</th><td>1,74 RON</td>", page)
    assert re.search(r"</th><td>10,00 RON</td>", page)
    assert "Primele 15 min gratuite" in page


def test_the_page_shows_the_card_payment_its_refunds_and_what_is_still_owed(driver_client):
    parking = SecuredParkingFactory(operator=OperatorFactory(legal_name="P SRL"))
    session = ParkingSessionFactory(
        driver=driver_client.driver,
        secured_parking=parking,
        state=State.FINISHED,
        start_time=timezone.now() - timedelta(hours=2),
        end_time=timezone.now(),
        amount=Decimal("15.00"),
        vat_rate=Decimal("0.2100"),
    )
    paid_by(
        session,
        state=PaymentState.OUTSTANDING,
        amount=Decimal("15.00"),
        captured_amount=Decimal("10.00"),
        refunded_amount=Decimal("2.50"),
        hold_reference="pi_receipt_1",
    )

    page = page_text(receipt_page(driver_client, session.pk))

    assert re.search(r"Paid by card</th><td>10.00 RON</td>", page)
    assert re.search(r"Refunded</th><td>−2.50 RON</td>", page)
    assert re.search(r"Still to pay</th><td>5.00 RON</td>", page)
    assert "Payment reference: pi_receipt_1" in page


def test_everything_on_the_page_is_escaped(driver_client):
    script = "<script>alert('x')</script>"
    operator = OperatorFactory(legal_name=f"Evil {script} SRL", tax_id="<b>RO1</b>")
    parking = SecuredParkingFactory(operator=operator, name=f"P {script}", address=script)
    session = ParkingSessionFactory(
        driver=driver_client.driver,
        secured_parking=parking,
        state=State.FINISHED,
        start_time=timezone.now() - timedelta(hours=2),
        end_time=timezone.now(),
    )

    page = page_text(receipt_page(driver_client, session.pk))

    assert "<script" not in page and "<b>" not in page
    assert "P &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "&lt;b&gt;RO1&lt;/b&gt;" in page


def test_the_page_prints_and_loads_nothing_from_elsewhere(driver_client, finished):
    page = page_text(receipt_page(driver_client, finished.pk))

    assert "@media print" in page and "@page" in page
    assert not re.search(r"<(script|link|img|iframe)\b", page)
    assert not re.search(r'(src|href)="', page)


def test_json_stays_the_default_and_answers_say_they_vary_by_accept(driver_client, finished):
    for accept in ({}, {"HTTP_ACCEPT": "*/*"}, {"HTTP_ACCEPT": "application/json"}):
        response = driver_client.get(session_url(finished.pk, "receipt"), **accept)
        assert json_body(response, 200)["number"] == f"{finished.pk:08d}"
        assert "Accept" in response["Vary"]
    assert "Accept" in receipt_page(driver_client, finished.pk)["Vary"]


@pytest.mark.parametrize("case", ["open", "someone else's", "no token", "unknown"])
def test_errors_of_the_page_are_the_apis_json_errors(
    driver_client, make_driver_client, api_client, finished, case
):
    client, session_id, status = driver_client, finished.pk, 404
    if case == "open":
        session_id = new_session(driver_client, SecuredParkingFactory())["parking_session"]["id"]
    elif case == "someone else's":
        client = make_driver_client()
    elif case == "no token":
        client, status = api_client, 401
    else:
        session_id = finished.pk + 1000

    response = receipt_page(client, session_id)

    assert response.status_code == status
    assert error_code(response) in {"not_found", "not_authenticated"}


def test_an_unservable_accept_is_a_json_406(driver_client, finished):
    response = driver_client.get(session_url(finished.pk, "receipt"), HTTP_ACCEPT="image/png")

    assert response.status_code == 406
    assert error_code(response) == "not_acceptable"


@pytest.mark.parametrize("query", ["?format=html", "?format=", "?format=json"])
def test_a_query_string_does_not_choose_the_format(driver_client, finished, query):
    response = driver_client.get(session_url(finished.pk, "receipt") + query)

    assert json_body(response, 200)["number"] == f"{finished.pk:08d}"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_page_lists_each_refund_with_its_vat(localstripe, job_worker):
    from payments.services import refund
    from tests.refunds import captured_session

    job_worker(env={"STRIPE_API_BASE": localstripe.url})
    parking = SecuredParkingFactory(charges_by_card=True)
    session = captured_session(localstripe, parking, timedelta(minutes=70))
    refund(
        payment=session.payment,
        amount=Decimal("4.00"),
        reason="Barrier fault",
        actor=None,
        now=timezone.now(),
    )
    client = DriverClient(session.driver)

    body = json_body(client.get(session_url(session.pk, "receipt")), 200)
    page = page_text(receipt_page(client, session.pk))

    (made,) = body["payment"]["refunds"]
    assert made["amount"] == "4.00"
    when = formats.date_format(
        timezone.localtime(datetime.fromisoformat(made["refunded_at"])), "SHORT_DATETIME_FORMAT"
    )
    assert re.search(rf"Refunded {re.escape(when)}</th><td>−4.00 RON</td>", page)
    assert re.search(rf"of which VAT</th><td>−{made['vat_amount']} RON</td>", page)
    assert re.search(r"Paid by card</th><td>10.00 RON</td>", page)
