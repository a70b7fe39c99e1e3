"""The session body built from a flat row (parking.selectors.current_session_row).

Same document as ParkingSessionBodySerializer produces from model instances; a test holds
the two to the same bytes for every state."""

from datetime import datetime

from parking.models import CENT, Tariff, amount_due, effective_state
from parking_api.serializers import iso_seconds


def current_session_body(row: dict, now: datetime) -> dict:
    return {
        "amount": str(_amount_due(row, now).quantize(CENT)),
        "currency": row["currency"],
        "parking_session": {
            "id": row["id"],
            "type": row["type"],
            "state": effective_state(row["state"], row["start_time"], now),
            "start_time": iso_seconds(row["start_time"]),
            "end_time": iso_seconds(row["end_time"]),
            "entrance_remaining_tries": row["entrance_remaining_tries"],
            "exit_remaining_tries": row["exit_remaining_tries"],
        },
        "smart_key": {
            "id": row["smart_key_id"],
            "secured_parking_id": row["secured_parking_id"],
            "name": row["secured_parking__name"],
            "description": row["smart_key__description"],
            "is_active": row["secured_parking__is_active"],
            "type": row["smart_key__type"],
            "access_command": row["smart_key__access_command"],
            "is_online": row["secured_parking__is_online"],
            "start_time": iso_seconds(row["smart_key__start_time"]),
            "end_time": iso_seconds(row["smart_key__end_time"]),
            "access_points": [
                {
                    "access_point": {
                        "id": access_point["id"],
                        "mac_address": access_point["mac_address"],
                        "direction": access_point["direction"],
                    }
                }
                for access_point in sorted(row["access_points"] or (), key=lambda ap: ap["id"])
            ],
        },
    }


def _amount_due(row: dict, now: datetime):
    tariff = None
    if row["secured_parking__tariff__period_minutes"] is not None:
        tariff = Tariff(
            free_minutes=row["secured_parking__tariff__free_minutes"],
            period_minutes=row["secured_parking__tariff__period_minutes"],
            price_per_period=row["secured_parking__tariff__price_per_period"],
            daily_cap=row["secured_parking__tariff__daily_cap"],
        )
    return amount_due(
        state=row["state"],
        start_time=row["start_time"],
        amount=row["amount"],
        tariff=tariff,
        now=now,
    )
