"""Saving cards through the API against localstripe: the backend creates the Customer and a
SetupIntent, the app confirms it with Stripe (the card number never reaches us), and the
list shows brand, last 4, expiry and which card pays."""

import pytest

from payments.models import Card, ProviderCustomer
from tests.api import DriverClient, error_code, json_body
from tests.factories import DriverFactory
from tests.payments import (
    CARD_3DS,
    CARD_DECLINED,
    CARD_OK,
    PAYMENT_METHODS_URL,
    save_card,
)

pytestmark = pytest.mark.django_db


def test_a_saved_card_is_listed_with_brand_last4_expiry_and_as_the_default(
    driver_client, localstripe
):
    card = save_card(driver_client, localstripe)

    assert card == {
        "id": card["id"],
        "brand": "visa",
        "last4": "4242",
        "exp_month": 12,
        "exp_year": 2034,
        "is_default": True,
    }
    customer = ProviderCustomer.objects.get(driver=driver_client.driver)
    assert localstripe.get(f"/v1/customers/{customer.reference}")["email"] == (
        driver_client.driver.email
    )


def test_the_driver_has_one_stripe_customer_whatever_the_cards(driver_client, localstripe):
    save_card(driver_client, localstripe)
    save_card(driver_client, localstripe, CARD_3DS)

    assert ProviderCustomer.objects.filter(driver=driver_client.driver).count() == 1
    cards = json_body(driver_client.get(PAYMENT_METHODS_URL), 200)
    assert [(card["last4"], card["is_default"]) for card in cards] == [
        ("4242", True),
        ("3155", False),
    ]


def test_a_card_declined_when_saved_is_not_listed(driver_client, localstripe):
    setup = json_body(driver_client.post(PAYMENT_METHODS_URL), 201)
    assert setup["client_secret"].startswith(setup["setup_intent_id"])

    assert localstripe.confirm_setup(setup["client_secret"], CARD_DECLINED).status_code == 402

    assert json_body(driver_client.get(PAYMENT_METHODS_URL), 200) == []


def test_a_setup_not_confirmed_yet_lists_nothing(driver_client, localstripe):
    json_body(driver_client.post(PAYMENT_METHODS_URL), 201)

    assert json_body(driver_client.get(PAYMENT_METHODS_URL), 200) == []


def test_making_another_card_the_default_leaves_one_default(driver_client, localstripe):
    first = save_card(driver_client, localstripe)
    second = save_card(driver_client, localstripe, CARD_3DS)

    body = json_body(driver_client.post(f"{PAYMENT_METHODS_URL}/{second['id']}/default"), 200)

    assert body["is_default"] is True
    defaults = Card.objects.filter(driver=driver_client.driver, is_default=True)
    assert list(defaults.values_list("pk", flat=True)) == [second["id"]]
    assert Card.objects.get(pk=first["id"]).is_default is False


def test_removing_the_default_card_detaches_it_and_makes_the_next_one_default(
    driver_client, localstripe
):
    first = save_card(driver_client, localstripe)
    second = save_card(driver_client, localstripe, CARD_3DS)
    reference = Card.objects.get(pk=first["id"]).reference

    response = driver_client.delete(f"{PAYMENT_METHODS_URL}/{first['id']}")

    assert response.status_code == 204
    assert localstripe.get(f"/v1/payment_methods/{reference}")["customer"] is None
    cards = json_body(driver_client.get(PAYMENT_METHODS_URL), 200)
    assert [(card["id"], card["is_default"]) for card in cards] == [(second["id"], True)]


def test_another_drivers_card_cannot_be_removed_or_made_default(driver_client, localstripe):
    other = DriverClient(DriverFactory())
    card = save_card(other, localstripe, CARD_OK)

    assert driver_client.delete(f"{PAYMENT_METHODS_URL}/{card['id']}").status_code == 404
    response = driver_client.post(f"{PAYMENT_METHODS_URL}/{card['id']}/default")
    assert response.status_code == 404
    assert Card.objects.filter(pk=card["id"]).exists()


def test_saving_a_card_while_stripe_is_down_answers_503(driver_client, own_localstripe):
    own_localstripe.stop()

    response = driver_client.post(PAYMENT_METHODS_URL)

    assert response.status_code == 503
    assert error_code(response) == "payment_provider_unavailable"
