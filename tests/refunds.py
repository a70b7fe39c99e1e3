"""Sessions paid by card through the API, localstripe and a real job worker, for the refund
tests; and the back office's refund action, as a member of staff posts it."""

from datetime import timedelta

from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from parking.models import ParkingSession
from payments.models import Payment, PaymentState
from tests.api import DriverClient, act, json_body, start_session
from tests.back_office import changelist_url
from tests.factories import DriverFactory, OperatorStaffFactory
from tests.jobs import wait_until
from tests.payments import LocalStripe, save_card


def captured_session(stripe: LocalStripe, parking, stay: timedelta) -> ParkingSession:
    """A new driver's finished session at ``parking`` whose stay lasted ``stay``, its payment
    captured by the job worker (which the test started)."""
    client = DriverClient(DriverFactory())
    save_card(client, stripe)
    session_id = json_body(start_session(client, parking), 201)["parking_session"]["id"]
    act(client, session_id, "enter")
    ParkingSession.objects.filter(pk=session_id).update(start_time=timezone.now() - stay)
    act(client, session_id, "exit")
    act(client, session_id, "finalize")
    session = ParkingSession.objects.get(pk=session_id)
    wait_until(
        lambda: Payment.objects.get(pk=session.payment_id).state == PaymentState.CAPTURED,
        what=f"payment of session {session_id} captured",
        timeout=40,
    )
    return ParkingSession.objects.select_related("payment").get(pk=session_id)


def refunding_staff(operator, *, may_refund: bool = True) -> Client:
    """A browser session of a new staff member of ``operator``, allowed to refund."""
    staff = OperatorStaffFactory(operator=operator)
    if may_refund:
        staff.user_permissions.add(Permission.objects.get(codename="refund_parkingsession"))
    client = Client()
    client.force_login(staff)
    return client


def post_refund(client: Client, sessions, **confirmation):
    """The session list's refund action for ``sessions``: its confirmation page, or, with
    ``reason`` (and ``amount``), the refund (followed to the list and its messages)."""
    data = {"action": "refund_sessions", "_selected_action": [s.pk for s in sessions]}
    if confirmation:
        data.update(confirm="yes", **confirmation)
        return client.post(changelist_url(ParkingSession), data, follow=True)
    return client.post(changelist_url(ParkingSession), data)


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]
