"""Several operators in one back office: who is an operator's staff, and staff see and change
only their operator's rows; operators, users and OAuth clients are for superusers."""

from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application

from accounts.models import User
from parking.models import (
    Debt,
    Operator,
    OperatorMembership,
    ParkingSession,
    SecuredParking,
    State,
)
from parking.services.access import record_access
from parking.services.operators import OPERATOR_STAFF_GROUP, add_operator_staff
from payments.models import PaymentState
from smart_keys.models import (
    AccessEvent,
    AccessLogEntry,
    AccessPoint,
    AccessResult,
    BarrierGateway,
    KeyPairState,
    ParkingKeyPair,
    SmartKey,
)
from smart_keys.services import current_key_pair
from tests.api import new_session
from tests.back_office import add_url, change_url, changelist_url, listed, staff_client
from tests.factories import (
    BarrierGatewayFactory,
    DriverFactory,
    OperatorFactory,
    ParkingSessionFactory,
    SecuredParkingFactory,
    paid_by,
)

pytestmark = pytest.mark.django_db

# Every admin over an operator's data; Operator itself is for superusers only (below).
SCOPED_MODELS = [
    SecuredParking,
    AccessPoint,
    SmartKey,
    ParkingSession,
    Debt,
    ParkingKeyPair,
    BarrierGateway,
    AccessLogEntry,
]


@dataclass
class Company:
    operator: Operator
    parking: SecuredParking
    session: ParkingSession

    def rows_of(self, model) -> list:
        if model is SecuredParking:
            return [self.parking]
        if model is SmartKey:
            return [self.session.smart_key]
        if model in (ParkingSession, Debt):
            return [self.session]
        return list(model.objects.filter(secured_parking=self.parking).order_by("pk"))


def a_company(name: str) -> Company:
    """An operator with one parking and everything hanging off it, one row of each."""
    now = timezone.now()
    operator = OperatorFactory(name=name)
    parking = SecuredParkingFactory(operator=operator, access_points=1)
    session = ParkingSessionFactory(secured_parking=parking, driver__email=f"driver@{name}.ro")
    paid_by(session, state=PaymentState.OUTSTANDING, amount="10.00")  # a debt
    current_key_pair(secured_parking_id=parking.pk, now=now)
    BarrierGatewayFactory(secured_parking=parking)
    record_access(
        session=session, event=AccessEvent.ENTRANCE_TRY, result=AccessResult.GRANTED, now=now
    )
    return Company(operator, parking, session)


@pytest.fixture
def ours() -> Company:
    return a_company("ours")


@pytest.fixture
def theirs() -> Company:
    return a_company("theirs")


@pytest.fixture
def our_staff(ours) -> Client:
    return staff_client(ours.operator)


@pytest.mark.parametrize("model", SCOPED_MODELS)
def test_staff_list_only_their_operators_rows(our_staff, ours, theirs, model):
    response = our_staff.get(changelist_url(model))

    assert response.status_code == 200
    assert sorted(listed(response), key=lambda o: o.pk) == ours.rows_of(model)


@pytest.mark.parametrize("model", SCOPED_MODELS)
def test_superusers_list_every_operators_rows(superuser_client, ours, theirs, model):
    response = superuser_client.get(changelist_url(model))

    assert len(listed(response)) == len(ours.rows_of(model)) + len(theirs.rows_of(model))


@pytest.mark.parametrize("model", SCOPED_MODELS)
def test_staff_open_their_own_rows_by_url(our_staff, ours, model):
    response = our_staff.get(change_url(ours.rows_of(model)[0]))

    assert response.status_code == 200


@pytest.mark.parametrize("model", SCOPED_MODELS)
@pytest.mark.parametrize("page", ["change", "history", "delete"])
def test_another_operators_row_by_url_is_not_found(our_staff, ours, theirs, model, page):
    obj = theirs.rows_of(model)[0]
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_{page}", args=[obj.pk])

    response = our_staff.get(url)

    assert response.status_code == 404


def test_another_operators_parking_cannot_be_changed_by_post(our_staff, theirs):
    response = our_staff.post(change_url(theirs.parking), {"name": "Hijacked"})

    assert response.status_code == 404
    theirs.parking.refresh_from_db()
    assert theirs.parking.name != "Hijacked"


def test_staff_without_an_operator_see_nothing(ours):
    client = staff_client(ours.operator)
    OperatorMembership.objects.all().delete()

    for model in SCOPED_MODELS:
        assert listed(client.get(changelist_url(model))) == []


def test_search_does_not_reach_another_operators_sessions(our_staff, theirs):
    by_email = our_staff.get(changelist_url(ParkingSession), {"q": "driver@theirs.ro"})
    by_id = our_staff.get(changelist_url(ParkingSession), {"q": str(theirs.session.pk)})

    assert listed(by_email) == []
    assert theirs.session not in listed(by_id)


def test_the_parking_filter_offers_only_the_staffs_parkings(our_staff, ours, theirs):
    second = SecuredParkingFactory(operator=ours.operator, name="Zorilor")

    response = our_staff.get(changelist_url(ParkingSession))

    parking_filter = next(
        spec for spec in response.context["cl"].filter_specs if spec.title == "secured parking"
    )
    assert parking_filter.lookup_choices == [
        (ours.parking.pk, ours.parking.name),
        (second.pk, "Zorilor"),
    ]


def test_a_barrier_can_be_added_only_to_the_staffs_parkings(our_staff, ours, theirs):
    form = our_staff.get(add_url(AccessPoint)).context["adminform"].form
    assert list(form.fields["secured_parking"].queryset) == [ours.parking]

    data = {"direction": "entrance", "mac_address": "a4-c1-38-0f-2b-9e", "name": "Sneaky"}
    response = our_staff.post(add_url(AccessPoint), {**data, "secured_parking": theirs.parking.pk})

    assert response.status_code == 200
    assert "secured_parking" in response.context["adminform"].form.errors
    assert not AccessPoint.objects.filter(name="Sneaky").exists()


def new_parking_data(**extra) -> dict:
    return {
        "name": "New P",
        "currency": "RON",
        "capacity": 10,
        "entrance_tries": 3,
        "exit_tries": 3,
        "is_active": "on",
        "access_points-TOTAL_FORMS": 0,
        "access_points-INITIAL_FORMS": 0,
        "tariff-TOTAL_FORMS": 1,
        "tariff-INITIAL_FORMS": 0,
        "tariff-0-free_minutes": 15,
        "tariff-0-period_minutes": 60,
        "tariff-0-price_per_period": "5.00",
        **extra,
    }


def test_staff_must_give_a_new_parking_to_their_own_operator(our_staff, ours, theirs):
    form = our_staff.get(add_url(SecuredParking)).context["adminform"].form
    assert list(form.fields["operator"].queryset) == [ours.operator]
    assert form.fields["operator"].required

    missing = our_staff.post(add_url(SecuredParking), new_parking_data())
    foreign = our_staff.post(add_url(SecuredParking), new_parking_data(operator=theirs.operator.pk))
    own = our_staff.post(add_url(SecuredParking), new_parking_data(operator=ours.operator.pk))

    assert "operator" in missing.context["adminform"].form.errors
    assert "operator" in foreign.context["adminform"].form.errors
    assert own.status_code == 302
    assert SecuredParking.objects.get(name="New P").operator == ours.operator


def test_the_session_actions_cannot_reach_another_operators_sessions(our_staff, theirs):
    response = our_staff.post(
        changelist_url(ParkingSession),
        {
            "action": "finalize_sessions",
            "_selected_action": [theirs.session.pk],
            "confirm": "yes",
            "reason": "Not mine",
        },
    )

    assert response.status_code == 302
    theirs.session.refresh_from_db()
    assert theirs.session.state == State.ACTIVE
    assert not theirs.session.audit_entries.exists()


@pytest.mark.parametrize("model", [Operator, User, Group, Application, AccessToken])
def test_operators_users_and_oauth_clients_are_for_superusers_only(
    our_staff, superuser_client, model
):
    assert our_staff.get(changelist_url(model)).status_code == 403
    assert superuser_client.get(changelist_url(model)).status_code == 200


def test_a_superuser_adds_staff_to_an_operator_on_its_page(superuser_client, ours):
    newcomer = DriverFactory()

    response = superuser_client.post(
        change_url(ours.operator),
        {
            "name": ours.operator.name,
            "memberships-TOTAL_FORMS": 1,
            "memberships-INITIAL_FORMS": 0,
            "memberships-0-user": newcomer.pk,
        },
    )

    assert response.status_code == 302, response.context["errors"]
    newcomer.refresh_from_db()
    assert newcomer.is_staff
    assert newcomer.groups.filter(name=OPERATOR_STAFF_GROUP).exists()
    assert Group.objects.get(name=OPERATOR_STAFF_GROUP).permissions.exists()
    newcomers_view = Client()
    newcomers_view.force_login(newcomer)
    assert listed(newcomers_view.get(changelist_url(ParkingSession))) == [ours.session]


def has_a_next_key_pair(parking) -> bool:
    return ParkingKeyPair.objects.filter(secured_parking=parking, state=KeyPairState.NEXT).exists()


def test_staff_rotate_the_signing_keys_of_their_parkings_only(our_staff, ours, theirs):
    ours_before = current_key_pair(secured_parking_id=ours.parking.pk, now=timezone.now())
    theirs_before = current_key_pair(secured_parking_id=theirs.parking.pk, now=timezone.now())

    response = our_staff.post(
        changelist_url(SecuredParking),
        {
            "action": "rotate_signing_keys",
            "index": 0,
            "_selected_action": [ours.parking.pk, theirs.parking.pk],
        },
    )

    assert response.status_code == 302
    assert has_a_next_key_pair(ours.parking)
    assert not has_a_next_key_pair(theirs.parking)
    assert ParkingKeyPair.objects.current().get(secured_parking=ours.parking) == ours_before
    assert ParkingKeyPair.objects.current().get(secured_parking=theirs.parking) == theirs_before


def test_staff_edit_their_parkings_capacity_and_tariff(our_staff, ours):
    parking = ours.parking
    tariff = parking.tariff
    data = {
        "name": parking.name,
        "operator": ours.operator.pk,
        "currency": "RON",
        "capacity": 250,
        "entrance_tries": 3,
        "exit_tries": 3,
        "is_active": "on",
        "access_points-TOTAL_FORMS": 0,
        "access_points-INITIAL_FORMS": 0,
        "tariff-TOTAL_FORMS": 1,
        "tariff-INITIAL_FORMS": 1,
        "tariff-0-secured_parking": parking.pk,
        "tariff-0-free_minutes": tariff.free_minutes,
        "tariff-0-period_minutes": 30,
        "tariff-0-price_per_period": "2.50",
    }

    response = our_staff.post(change_url(parking), data)

    assert response.status_code == 302, response.context["errors"]
    parking.refresh_from_db()
    tariff.refresh_from_db()
    assert parking.capacity == 250
    assert (tariff.period_minutes, str(tariff.price_per_period)) == (30, "2.5000")


def test_staff_rotate_keys_and_read_the_log_of_their_own_parkings_only(
    driver_client, make_driver_client
):
    operator = OperatorFactory()
    mine = SecuredParkingFactory(operator=operator, access_points=1)
    theirs = SecuredParkingFactory(operator=OperatorFactory(), access_points=1)
    new_session(driver_client, mine)
    new_session(make_driver_client(), theirs)
    my_key = ParkingKeyPair.objects.get(secured_parking=mine)
    their_key = ParkingKeyPair.objects.get(secured_parking=theirs)
    client = staff_client(operator)
    keys_url = changelist_url(ParkingKeyPair)

    keys = client.get(keys_url)
    client.post(keys_url, {"action": "rotate", "_selected_action": [my_key.pk, their_key.pk]})
    log = client.get(changelist_url(AccessLogEntry))

    assert listed(keys) == [my_key]
    assert has_a_next_key_pair(mine) and not has_a_next_key_pair(theirs)
    assert {entry.secured_parking for entry in listed(log)} == {mine}


def test_staff_cannot_reach_another_operators_keys_through_the_emergency_rotation():
    operator = OperatorFactory()
    mine = SecuredParkingFactory(operator=operator)
    theirs = SecuredParkingFactory(operator=OperatorFactory())
    my_key = current_key_pair(secured_parking_id=mine.pk, now=timezone.now())
    their_key = current_key_pair(secured_parking_id=theirs.pk, now=timezone.now())
    client = staff_client(operator)
    selected = [my_key.pk, their_key.pk]

    page = client.post(
        changelist_url(ParkingKeyPair), {"action": "rotate_leaked", "_selected_action": selected}
    )
    client.post(
        changelist_url(ParkingKeyPair),
        {"action": "rotate_leaked", "_selected_action": selected, "confirm": "yes"},
    )

    assert [parking for parking, _keys in page.context["rows"]] == [mine]
    assert ParkingKeyPair.objects.current().get(secured_parking=mine) != my_key
    assert ParkingKeyPair.objects.current().get(secured_parking=theirs) == their_key


def test_adding_operator_staff_makes_a_staff_member_with_the_group_permissions():
    user = DriverFactory()
    operator = OperatorFactory()

    add_operator_staff(user=user, operator=operator)
    add_operator_staff(user=user, operator=operator)  # idempotent

    user = type(user).objects.get(pk=user.pk)
    assert user.is_staff and not user.is_superuser
    assert list(user.operator_memberships.values_list("operator", flat=True)) == [operator.pk]
    assert user.groups.get() == Group.objects.get(name=OPERATOR_STAFF_GROUP)
    assert user.has_perms(
        [
            "parking.view_parkingsession",
            "parking.operate_parkingsession",
            "parking.change_securedparking",
            "parking.change_tariff",
            "smart_keys.add_accesspoint",
            "smart_keys.view_smartkey",
            "smart_keys.view_accesslogentry",
        ]
    )
    assert not user.has_perm("parking.change_parkingsession")
    assert not user.has_perm("parking.delete_securedparking")
    assert not user.has_perm("parking.view_operator")
    assert not user.has_perm("accounts.view_user")
