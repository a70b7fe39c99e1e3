"""The phone's side of saving a card, for the local demo and the tests: what Stripe's mobile
SDK does with a SetupIntent's client secret and the publishable key. The card number goes to
Stripe (localstripe, on loopback) only, never to the backend; only test keys are accepted."""

import requests

# Stripe's test cards.
CARD_OK = "4242424242424242"


def confirm_card_setup(
    *, api_base: str, publishable_key: str, client_secret: str, number: str
) -> requests.Response:
    """Confirm the SetupIntent of ``client_secret`` with the test card ``number``, passing
    3-D Secure if the card asks for it (localstripe completes it on a second confirm)."""
    if not publishable_key.startswith("pk_test_"):
        raise ValueError("Test cards are confirmed with a test publishable key only.")
    setup_id = client_secret.split("_secret_")[0]
    url = f"{api_base.rstrip('/')}/v1/setup_intents/{setup_id}/confirm"
    card = {"number": number, "exp_month": "12", "exp_year": "2034", "cvc": "123"}
    data = {
        "key": publishable_key,
        "client_secret": client_secret,
        "payment_method_data[type]": "card",
        **{f"payment_method_data[card][{name}]": value for name, value in card.items()},
    }
    response = requests.post(url, data=data, timeout=5)
    if response.ok and response.json()["status"] == "requires_action":
        response = requests.post(
            url, data={"key": publishable_key, "client_secret": client_secret}, timeout=5
        )
    return response
