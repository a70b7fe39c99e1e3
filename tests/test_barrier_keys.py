"""Barriers' own public keys: registered on the access point in the back office or by the
provisioning import, replaced with the old key kept for what it signed before."""

import json
import sys
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from core.errors import DomainError
from smart_keys.models import AccessPointKey, Direction
from smart_keys.passages import register_barrier_key
from smart_keys.reference_barrier import ReferenceBarrier
from tests.back_office import change_url, staff_client
from tests.factories import AccessPointFactory, OperatorFactory, SecuredParkingFactory

pytestmark = pytest.mark.django_db


def a_public_key() -> str:
    return ReferenceBarrier("", "entrance", []).public_key.hex()


def form_data(access_point, **extra) -> dict:
    """The access point page as a browser posts it, with its read-only list of keys."""
    keys = list(access_point.barrier_keys.order_by("-registered_at", "-id"))
    listed = {f"barrier_keys-{n}-id": key.pk for n, key in enumerate(keys)} | {
        f"barrier_keys-{n}-access_point": access_point.pk for n in range(len(keys))
    }
    return {
        "secured_parking": access_point.secured_parking_id,
        "name": access_point.name,
        "direction": access_point.direction,
        "mac_address": access_point.mac_address,
        "barrier_public_key": "",
        "barrier_keys-TOTAL_FORMS": len(keys),
        "barrier_keys-INITIAL_FORMS": len(keys),
        "barrier_keys-MIN_NUM_FORMS": 0,
        "barrier_keys-MAX_NUM_FORMS": 1000,
        **listed,
        **extra,
    }


@pytest.fixture
def access_point():
    return AccessPointFactory(secured_parking=SecuredParkingFactory(operator=OperatorFactory()))


class TestTheAccessPointPage:
    def test_staff_register_their_barriers_key_in_any_spelling(self, access_point):
        client = staff_client(access_point.secured_parking.operator)
        key = a_public_key()
        spelled = " ".join(key[i : i + 2].upper() for i in range(0, 64, 2))

        response = client.post(
            change_url(access_point), form_data(access_point, barrier_public_key=spelled)
        )

        assert response.status_code == 302, response.context["adminform"].errors
        registered = AccessPointKey.objects.current().get(access_point=access_point)
        assert registered.public_key == key
        page = client.get(change_url(access_point)).content.decode()
        assert registered.key_id in page

    def test_a_new_key_replaces_the_old_one_which_stays_listed(
        self, superuser_client, access_point
    ):
        old = register_barrier_key(
            access_point=access_point, public_key=a_public_key(), now=timezone.now()
        )

        superuser_client.post(
            change_url(access_point), form_data(access_point, barrier_public_key=a_public_key())
        )

        old.refresh_from_db()
        assert old.replaced_at is not None and old.accepted_until > old.replaced_at
        assert AccessPointKey.objects.filter(access_point=access_point).count() == 2

    def test_a_compromised_old_key_is_trusted_no_longer(self, superuser_client, access_point):
        old = register_barrier_key(
            access_point=access_point, public_key=a_public_key(), now=timezone.now()
        )

        superuser_client.post(
            change_url(access_point),
            form_data(access_point, barrier_public_key=a_public_key(), old_key_compromised="on"),
        )

        old.refresh_from_db()
        assert old.accepted_until == old.replaced_at

    @pytest.mark.parametrize("text", ["abc", "g" * 64, "00" * 33])
    def test_a_key_that_is_not_64_hex_digits_is_refused_and_nothing_changes(
        self, superuser_client, access_point, text
    ):
        response = superuser_client.post(
            change_url(access_point), form_data(access_point, barrier_public_key=text)
        )

        assert response.status_code == 200
        assert "barrier_public_key" in response.context["adminform"].form.errors
        assert not AccessPointKey.objects.exists()

    def test_a_key_another_barrier_holds_is_refused(self, superuser_client, access_point):
        other = AccessPointFactory(secured_parking=access_point.secured_parking)
        key = a_public_key()
        register_barrier_key(access_point=other, public_key=key, now=timezone.now())

        response = superuser_client.post(
            change_url(access_point), form_data(access_point, barrier_public_key=key)
        )

        assert "barrier_public_key" in response.context["adminform"].form.errors
        assert not AccessPointKey.objects.filter(access_point=access_point).exists()

    def test_saving_the_page_without_a_key_leaves_the_key(self, superuser_client, access_point):
        key = register_barrier_key(
            access_point=access_point, public_key=a_public_key(), now=timezone.now()
        )

        superuser_client.post(change_url(access_point), form_data(access_point, name="North gate"))

        assert AccessPointKey.objects.current().get(access_point=access_point) == key

    def test_staff_of_another_operator_cannot_open_the_page(self, access_point):
        client = staff_client(OperatorFactory())

        assert client.get(change_url(access_point)).status_code == 404


class TestTheService:
    def test_registering_the_same_key_again_changes_nothing(self, access_point):
        key = a_public_key()
        first = register_barrier_key(access_point=access_point, public_key=key, now=timezone.now())

        again = register_barrier_key(access_point=access_point, public_key=key, now=timezone.now())

        assert again == first and again.replaced_at is None

    def test_a_replaced_key_never_comes_back(self, access_point):
        key = a_public_key()
        register_barrier_key(access_point=access_point, public_key=key, now=timezone.now())
        register_barrier_key(
            access_point=access_point, public_key=a_public_key(), now=timezone.now()
        )

        with pytest.raises(DomainError) as refusal:
            register_barrier_key(access_point=access_point, public_key=key, now=timezone.now())
        assert refusal.value.code == "barrier_key_in_use"


class TestTheProvisioningImport:
    def run(self, text: str, *args) -> tuple[str, str]:
        out, err = StringIO(), StringIO()
        stdin = sys.stdin
        sys.stdin = StringIO(text)
        try:
            call_command("import_barrier_keys", "-", *args, stdout=out, stderr=err)
        finally:
            sys.stdin = stdin
        return out.getvalue(), err.getvalue()

    def test_a_csv_registers_each_barrier_by_its_mac_in_any_spelling(self):
        parking = SecuredParkingFactory(access_points=2)
        points = list(parking.access_points.order_by("id"))
        keys = [a_public_key() for _ in points]
        rows = [
            f"{p.mac_address.lower().replace(':', '-')},{k}"
            for p, k in zip(points, keys, strict=True)
        ]

        out, _err = self.run("mac_address,public_key\n" + "\n".join(rows) + "\n")

        assert out.count("key ") == 3
        for point, key in zip(points, keys, strict=True):
            assert AccessPointKey.objects.current().get(access_point=point).public_key == key

    def test_a_json_list_replaces_a_key_and_reports_one_it_holds_already(self):
        point = AccessPointFactory(direction=Direction.EXIT)
        held, new = a_public_key(), a_public_key()
        register_barrier_key(access_point=point, public_key=held, now=timezone.now())
        other = AccessPointFactory()
        register_barrier_key(access_point=other, public_key=new, now=timezone.now())
        document = [{"mac_address": other.mac_address, "public_key": new}]

        out, _err = self.run(json.dumps(document))
        assert "already holds" in out
        replacement = a_public_key()
        out, _err = self.run(
            json.dumps([{"mac_address": point.mac_address, "public_key": replacement}])
        )
        assert f"replaces {AccessPointKey.objects.get(public_key=held).key_id}" in out

    def test_refused_rows_are_reported_and_the_others_registered(self):
        point = AccessPointFactory()
        good = a_public_key()
        text = (
            "mac_address,public_key\n"
            "02:FF:FF:FF:FF:FF," + a_public_key() + "\n"
            f"{point.mac_address},not-a-key\n"
            f"{point.mac_address},{good}\n"
        )

        with pytest.raises(CommandError, match="2 of 3 rows refused"):
            self.run(text)

        assert AccessPointKey.objects.current().get(access_point=point).public_key == good

    @pytest.mark.parametrize("text", ["{", "{}", "mac,key\n1,2\n"])
    def test_a_file_of_another_shape_is_refused_whole(self, text):
        with pytest.raises(CommandError):
            self.run(text)
        assert not AccessPointKey.objects.exists()
