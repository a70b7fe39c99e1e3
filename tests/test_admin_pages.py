"""The back office as a superuser sees it: every list and change page, search, what can be
added or changed by hand, the parking page's barriers and tariff, and the smart-key pages
(key pairs, the access log, barrier gateways). Per-operator scoping, session actions and
behaviour at scale have files of their own (test_admin_*)."""

from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from parking.models import ParkingSession, SecuredParking
from smart_keys.models import (
    AccessLogEntry,
    AccessPoint,
    BarrierGateway,
    KeyPairState,
    ParkingKeyPair,
    SmartKey,
)
from smart_keys.services import current_key_pair, rotate_parking_key_pair
from tests.api import new_session
from tests.back_office import add_url, change_url, changelist_url, listed, parking_form_data
from tests.factories import (
    AccessPointFactory,
    BarrierGatewayFactory,
    MobileApplicationFactory,
    ParkingSessionFactory,
    SecuredParkingFactory,
)

pytestmark = pytest.mark.django_db

MODELS = [SecuredParking, ParkingSession, AccessPoint, SmartKey]
CONFIRMATION_TEMPLATE = "admin/smart_keys/parkingkeypair/action_confirmation.html"


def messages_of(response) -> str:
    return " ".join(str(message) for message in response.context["messages"])


def a_session_with_barriers(**kwargs) -> ParkingSession:
    """A session whose key opens two entrance barriers; its parking also has an exit one."""
    return ParkingSessionFactory(secured_parking__access_points=2, **kwargs)


@pytest.mark.parametrize("model", MODELS)
def test_each_changelist_lists_its_rows(superuser_client, model):
    a_session_with_barriers()

    response = superuser_client.get(changelist_url(model))

    assert response.status_code == 200
    assert len(listed(response)) == model.objects.count() > 0


@pytest.mark.parametrize("model", MODELS)
def test_each_change_page_opens(superuser_client, model):
    a_session_with_barriers()
    obj = model.objects.first()

    response = superuser_client.get(change_url(obj))

    assert response.status_code == 200
    assert response.context["original"] == obj


@pytest.mark.parametrize("model", [SecuredParking, AccessPoint])
def test_parkings_and_barriers_can_be_added_by_hand(superuser_client, model):
    response = superuser_client.get(add_url(model))

    assert response.status_code == 200


@pytest.mark.parametrize("model", [ParkingSession, SmartKey])
def test_sessions_and_keys_come_only_from_the_workflow(superuser_client, model):
    response = superuser_client.get(add_url(model))

    assert response.status_code == 403


def test_a_session_page_cannot_change_the_session(superuser_client):
    session = a_session_with_barriers()
    before = ParkingSession.objects.values().get(pk=session.pk)

    response = superuser_client.post(change_url(session), {"state": "finished", "amount": "0.01"})

    assert response.status_code == 403
    assert ParkingSession.objects.values().get(pk=session.pk) == before


def test_sessions_are_found_by_driver_email(superuser_client):
    wanted = a_session_with_barriers(driver__email="maria@example.com")
    a_session_with_barriers(driver__email="ion@example.com")

    response = superuser_client.get(changelist_url(ParkingSession), {"q": "MARIA@example"})

    assert listed(response) == [wanted]


@pytest.mark.parametrize("spelling", ["02:00:00:00:AB:CD", "02-00-00-00-ab-cd", "0200.0000.abcd"])
def test_sessions_are_found_by_access_point_mac_in_any_spelling(superuser_client, spelling):
    wanted = ParkingSessionFactory()
    wanted.smart_key.access_points.set(
        [
            AccessPointFactory(secured_parking=wanted.secured_parking, mac_address=mac)
            for mac in ["02:00:00:00:AB:CD", "02:00:00:00:AB:CE"]
        ]
    )
    a_session_with_barriers()

    response = superuser_client.get(changelist_url(ParkingSession), {"q": spelling})

    # Listed once although the key opens two barriers.
    assert listed(response) == [wanted]


def test_sessions_are_found_by_id(superuser_client):
    wanted = a_session_with_barriers()
    a_session_with_barriers()

    for term in [str(wanted.pk), f"#{wanted.pk}"]:
        response = superuser_client.get(changelist_url(ParkingSession), {"q": term})
        assert listed(response) == [wanted]


@pytest.mark.parametrize("spelling", ["AB:CD", "ab-cd", "00:ab:cd"])
def test_sessions_are_found_by_the_last_bytes_of_a_barrier_mac(superuser_client, spelling):
    wanted = ParkingSessionFactory()
    wanted.smart_key.access_points.set(
        [
            AccessPointFactory(
                secured_parking=wanted.secured_parking, mac_address="02:00:00:00:AB:CD"
            )
        ]
    )
    a_session_with_barriers()

    response = superuser_client.get(changelist_url(ParkingSession), {"q": spelling})

    assert listed(response) == [wanted]


def test_access_points_are_found_by_mac_and_by_parking_name(superuser_client):
    barrier = AccessPointFactory(mac_address="02:00:00:00:AB:CD", secured_parking__name="Gara")
    AccessPointFactory(secured_parking__name="Airport")

    by_mac = superuser_client.get(changelist_url(AccessPoint), {"q": "02-00-00-00-ab-cd"})
    by_parking = superuser_client.get(changelist_url(AccessPoint), {"q": "gara"})

    assert listed(by_mac) == [barrier]
    assert listed(by_parking) == [barrier]


def test_smart_keys_are_found_by_driver_email(superuser_client):
    wanted = a_session_with_barriers(driver__email="maria@example.com").smart_key
    a_session_with_barriers(driver__email="ion@example.com")

    response = superuser_client.get(changelist_url(SmartKey), {"q": "maria@"})

    assert listed(response) == [wanted]


def test_session_change_page_shows_the_keys_access_points_and_links_to_the_key(superuser_client):
    session = a_session_with_barriers(amount="4.17")
    key_barriers = list(session.smart_key.access_points.all())
    exit_barrier = session.secured_parking.access_points.exclude(smart_keys=session.smart_key).get()

    response = superuser_client.get(change_url(session))

    page = response.content.decode()
    assert len(key_barriers) == 2
    for barrier in key_barriers:
        assert barrier.mac_address in page
    assert exit_barrier.mac_address not in page
    assert f'href="{change_url(session.smart_key)}"' in page


def test_session_changelist_shows_amount_with_currency(superuser_client):
    a_session_with_barriers(state="exiting", amount="4.17")

    response = superuser_client.get(changelist_url(ParkingSession))

    assert "4.17 RON" in response.content.decode()


def test_smart_key_change_page_lists_its_access_points(superuser_client):
    key = a_session_with_barriers().smart_key

    response = superuser_client.get(change_url(key))

    page = response.content.decode()
    for barrier in key.access_points.all():
        assert barrier.mac_address in page


def test_parking_page_adds_a_barrier_and_stores_its_mac_canonical(superuser_client):
    parking = SecuredParkingFactory()
    barrier = {"name": "North gate", "direction": "entrance", "mac_address": "a4-c1-38-0f-2b-9e"}

    response = superuser_client.post(change_url(parking), parking_form_data(parking, barrier))

    assert response.status_code == 302, response.context["errors"]
    stored = parking.access_points.get()
    assert stored.mac_address == "A4:C1:38:0F:2B:9E"
    assert stored.name == "North gate"


def test_parking_page_rejects_an_invalid_mac_and_creates_nothing(superuser_client):
    parking = SecuredParkingFactory()
    barrier = {"direction": "entrance", "mac_address": "a4-c1-38-0f-2b"}

    response = superuser_client.post(change_url(parking), parking_form_data(parking, barrier))

    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert formset.errors == [{"mac_address": ["Enter a MAC address such as AA:BB:CC:DD:EE:FF."]}]
    assert not AccessPoint.objects.exists()


def test_parking_page_rejects_one_mac_entered_twice_in_two_spellings(superuser_client):
    parking = SecuredParkingFactory()
    spellings = ["a4-c1-38-0f-2b-9e", "A4:C1:38:0F:2B:9E"]
    barriers = [{"direction": "entrance", "mac_address": mac} for mac in spellings]

    response = superuser_client.post(change_url(parking), parking_form_data(parking, *barriers))

    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert "Please correct the duplicate data for mac_address." in formset.non_form_errors()[0]
    assert not AccessPoint.objects.exists()


def test_parking_page_rejects_a_mac_another_parking_uses_spelled_differently(superuser_client):
    AccessPointFactory(mac_address="A4:C1:38:0F:2B:9E")
    parking = SecuredParkingFactory()
    barrier = {"direction": "exit", "mac_address": "a4c1380f2b9e"}

    response = superuser_client.post(change_url(parking), parking_form_data(parking, barrier))

    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert "already exists" in formset.errors[0]["mac_address"][0]
    assert AccessPoint.objects.count() == 1


def test_the_parking_page_edits_its_tariff(superuser_client):
    parking = SecuredParkingFactory()
    data = parking_form_data(parking)
    data.update({"tariff-0-price_per_period": "6.50", "tariff-0-daily_cap": ""})

    response = superuser_client.post(change_url(parking), data)

    assert response.status_code == 302, response.context["errors"]
    parking.tariff.refresh_from_db()
    assert parking.tariff.price_per_period == Decimal("6.50")
    assert parking.tariff.daily_cap is None


class TestSmartKeyPages:
    """Key pairs, the access log and barrier gateways."""

    @pytest.fixture
    def parking(self):
        return SecuredParkingFactory(access_points=2, entrance_tries=3, exit_tries=3)

    def post_action(self, client, action: str, key_pairs, **data):
        selected = [key_pair.pk for key_pair in key_pairs]
        return client.post(
            changelist_url(ParkingKeyPair),
            {"action": action, "_selected_action": selected, **data},
            follow=True,
        )

    def test_a_routine_rotation_publishes_the_next_key_and_the_old_one_keeps_signing(
        self, superuser_client, parking
    ):
        old = current_key_pair(secured_parking_id=parking.pk, now=timezone.now())

        response = self.post_action(superuser_client, "rotate", [old])

        assert response.status_code == 200
        waiting = ParkingKeyPair.objects.get(secured_parking=parking, state=KeyPairState.NEXT)
        assert current_key_pair(secured_parking_id=parking.pk, now=timezone.now()) == old
        assert f"next key {waiting.key_id}, signing from" in messages_of(response)
        assert "next (published, not signing yet)" in response.content.decode()

    def test_a_rotation_while_a_next_key_waits_is_refused_with_a_message(
        self, superuser_client, parking
    ):
        old = current_key_pair(secured_parking_id=parking.pk, now=timezone.now())
        self.post_action(superuser_client, "rotate", [old])

        response = self.post_action(superuser_client, "rotate", [old])

        assert response.status_code == 200
        assert "already has a next key pair waiting" in messages_of(response)
        assert ParkingKeyPair.objects.filter(secured_parking=parking).count() == 2

    def test_switching_to_the_next_key_asks_for_confirmation_first(self, superuser_client, parking):
        old = current_key_pair(secured_parking_id=parking.pk, now=timezone.now())
        waiting = rotate_parking_key_pair(secured_parking_id=parking.pk, now=timezone.now())

        page = self.post_action(superuser_client, "switch_to_next", [old])

        assert page.templates[0].name == CONFIRMATION_TEMPLATE
        assert "will refuse every new command" in page.content.decode()
        assert current_key_pair(secured_parking_id=parking.pk, now=timezone.now()) == old

        response = self.post_action(superuser_client, "switch_to_next", [old], confirm="yes")

        assert current_key_pair(secured_parking_id=parking.pk, now=timezone.now()) == waiting
        old.refresh_from_db()
        assert old.state == KeyPairState.RETIRED and old.accepted_until > timezone.now()
        assert f"key {waiting.key_id} signs from now" in messages_of(response)

    def test_switching_without_a_next_key_says_so(self, superuser_client, parking):
        old = current_key_pair(secured_parking_id=parking.pk, now=timezone.now())

        response = self.post_action(superuser_client, "switch_to_next", [old], confirm="yes")

        assert "no next key pair waiting" in messages_of(response)
        assert current_key_pair(secured_parking_id=parking.pk, now=timezone.now()) == old

    def test_the_emergency_rotation_is_labelled_and_asks_for_confirmation_first(
        self, superuser_client, parking
    ):
        old = current_key_pair(secured_parking_id=parking.pk, now=timezone.now())

        changelist = superuser_client.get(changelist_url(ParkingKeyPair)).content.decode()
        page = self.post_action(superuser_client, "rotate_leaked", [old])

        assert "Emergency rotation: the private key leaked" in changelist
        assert page.templates[0].name == CONFIRMATION_TEMPLATE
        content = page.content.decode()
        assert "Emergency rotation" in content and "leaked private key" in content
        assert f"{old.key_id}: current (signing)" in content
        assert current_key_pair(secured_parking_id=parking.pk, now=timezone.now()) == old

    def test_the_confirmed_emergency_rotation_retires_the_old_key_at_once(
        self, superuser_client, parking
    ):
        old = current_key_pair(secured_parking_id=parking.pk, now=timezone.now())

        response = self.post_action(superuser_client, "rotate_leaked", [old], confirm="yes")

        new = current_key_pair(secured_parking_id=parking.pk, now=timezone.now())
        assert new != old
        old.refresh_from_db()
        assert old.state == KeyPairState.RETIRED and old.accepted_until <= timezone.now()
        assert f"key {new.key_id} signs from now" in messages_of(response)

    def test_key_pairs_are_read_only(self, superuser_client, parking):
        key_pair = current_key_pair(secured_parking_id=parking.pk, now=timezone.now())

        page = superuser_client.get(change_url(key_pair)).content.decode()

        assert key_pair.public_key in page
        assert key_pair.encrypted_private_key not in page
        assert superuser_client.get(add_url(ParkingKeyPair)).status_code == 403

    def test_the_access_log_is_listed_read_only(self, superuser_client, driver_client, parking):
        session_id = new_session(driver_client, parking)["parking_session"]["id"]
        entry = AccessLogEntry.objects.get(parking_session_id=session_id)
        changelist = changelist_url(AccessLogEntry)

        found = superuser_client.get(changelist, {"q": driver_client.driver.email})
        filtered = superuser_client.get(changelist, {"event__exact": "command_issued"})

        assert found.status_code == 200
        assert listed(found) == [entry]
        assert listed(filtered) == [entry]
        change = change_url(entry)
        page = superuser_client.get(change)
        assert page.status_code == 200
        assert b'name="_save"' not in page.content
        assert superuser_client.post(change, {"detail": "edited"}).status_code == 403
        delete = reverse("admin:smart_keys_accesslogentry_delete", args=[entry.pk])
        assert superuser_client.post(delete, {"post": "yes"}).status_code == 403
        assert superuser_client.get(add_url(AccessLogEntry)).status_code == 403
        entry.refresh_from_db()
        assert entry.detail != "edited"

    def test_a_gateway_credential_is_set_write_only_and_stored_encrypted(
        self, superuser_client, parking
    ):
        response = superuser_client.post(
            add_url(BarrierGateway),
            {
                "secured_parking": parking.pk,
                "url": "https://gateway.example.com/open",
                "credential": "s3cret-token",
                "is_enabled": "on",
            },
        )

        assert response.status_code == 302, response.content.decode()[:2000]
        gateway = BarrierGateway.objects.get(secured_parking=parking)
        assert gateway.credential == "s3cret-token"
        assert "s3cret-token" not in gateway.encrypted_credential
        change = change_url(gateway)
        assert b"s3cret-token" not in superuser_client.get(change).content
        superuser_client.post(
            change,
            {"secured_parking": parking.pk, "url": gateway.url, "credential": "", "is_enabled": ""},
        )
        gateway.refresh_from_db()
        assert gateway.credential == "s3cret-token" and not gateway.is_enabled


class TestGatewayURLRules:
    """Operators may only save an https gateway URL on a public address (the tests' own
    settings allow loopback over http, so each test turns the rules back on)."""

    @pytest.fixture(autouse=True)
    def production_rules(self, settings):
        settings.BARRIER_GATEWAY_ALLOW_HTTP = False
        settings.BARRIER_GATEWAY_ALLOW_PRIVATE_NETWORKS = False

    def save(self, client, url: str, parking=None):
        parking = parking or SecuredParkingFactory(is_online=True)
        return client.post(
            add_url(BarrierGateway),
            {"secured_parking": parking.pk, "url": url, "credential": "tok", "is_enabled": "on"},
        )

    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1:6379/",
            "http://169.254.169.254/latest/meta-data/",
            "http://localhost:5432/",
            "https://127.0.0.1:6379/",
            "https://169.254.169.254/latest/meta-data/",
            "https://localhost:5432/",
            "https://10.0.0.7/open",
            "https://172.16.5.4/open",
            "https://192.168.1.20/open",
            "https://[::1]/open",
            "https://[fe80::1]/open",
            "https://[::ffff:10.0.0.1]/open",
            "https://224.0.0.251/open",
            "https://240.0.0.1/open",
            "https://0.0.0.0/open",
            "https://100.64.0.1/open",
            "http://gateway.example.com/open",
        ],
    )
    def test_a_url_off_the_internet_or_without_https_is_a_form_error(self, superuser_client, url):
        response = self.save(superuser_client, url)

        assert response.status_code == 200
        assert list(response.context["adminform"].form.errors) == ["url"]
        assert not BarrierGateway.objects.exists()

    def test_a_public_https_url_is_saved(self, superuser_client):
        response = self.save(superuser_client, "https://8.8.8.8/open")

        assert response.status_code == 302, response.content.decode()[:2000]
        assert BarrierGateway.objects.get().url == "https://8.8.8.8/open"

    def test_the_model_refuses_it_too(self):
        gateway = BarrierGateway(
            secured_parking=SecuredParkingFactory(), url="https://127.0.0.1/open"
        )

        with pytest.raises(ValidationError) as refused:
            gateway.full_clean()

        assert list(refused.value.message_dict) == ["url"]


class TestGatewayCredentialFollowsTheURL:
    """A credential is only ever sent to the URL it was entered for."""

    @pytest.fixture
    def gateway(self):
        return BarrierGatewayFactory(url="https://8.8.8.8/open", credential="old-host-token")

    def change(self, client, gateway, **fields):
        data = {"secured_parking": gateway.secured_parking_id, "url": gateway.url}
        data |= {"credential": "", "is_enabled": "on"} | fields
        return client.post(change_url(gateway), data)

    def test_changing_the_url_without_a_new_credential_is_a_form_error(
        self, superuser_client, gateway
    ):
        response = self.change(superuser_client, gateway, url="https://8.8.4.4/open")

        assert response.status_code == 200
        assert list(response.context["adminform"].form.errors) == ["credential"]
        gateway.refresh_from_db()
        assert gateway.url == "https://8.8.8.8/open"
        assert gateway.credential == "old-host-token"

    def test_changing_the_url_with_a_new_credential_stores_both(self, superuser_client, gateway):
        response = self.change(
            superuser_client, gateway, url="https://8.8.4.4/open", credential="new-host-token"
        )

        assert response.status_code == 302, response.content.decode()[:2000]
        gateway.refresh_from_db()
        assert (gateway.url, gateway.credential) == ("https://8.8.4.4/open", "new-host-token")

    def test_keeping_the_url_keeps_the_credential(self, superuser_client, gateway):
        response = self.change(superuser_client, gateway, is_enabled="")

        assert response.status_code == 302, response.content.decode()[:2000]
        gateway.refresh_from_db()
        assert gateway.credential == "old-host-token" and not gateway.is_enabled

    def test_a_url_changed_outside_the_admin_drops_the_credential(self, gateway):
        gateway.url = "https://8.8.4.4/open"
        gateway.save()

        gateway.refresh_from_db()
        assert gateway.credential == ""


def view_on_site_url(obj) -> str:
    return reverse("admin:view_on_site", args=[ContentType.objects.get_for_model(obj).pk, obj.pk])


def test_view_on_site_of_an_oauth_application_is_404(superuser_client):
    # DOT's Application links to DOT's management pages, which this site does not serve.
    application = MobileApplicationFactory()
    superuser_client.raise_request_exception = False

    response = superuser_client.get(view_on_site_url(application))

    assert response.status_code == 404


def test_view_on_site_still_asks_for_staff(client):
    response = client.get(view_on_site_url(MobileApplicationFactory()))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
