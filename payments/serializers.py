"""The payments API's JSON: saved cards, card setups, a payment and its history."""

from rest_framework import serializers

from payments.models import Card, Payment, PaymentEvent, Refund


class CardSerializer(serializers.ModelSerializer[Card]):
    class Meta:
        model = Card
        fields = ["id", "brand", "last4", "exp_month", "exp_year", "is_default"]


class CardSetupSerializer(serializers.Serializer):
    setup_intent_id = serializers.CharField(
        help_text="The SetupIntent the app confirms with Stripe's SDK."
    )
    client_secret = serializers.CharField()
    publishable_key = serializers.CharField(help_text="Stripe's key for the app's SDK.")


class PaymentEventSerializer(serializers.ModelSerializer[PaymentEvent]):
    class Meta:
        model = PaymentEvent
        fields = ["kind", "amount", "reference", "detail", "created_at"]


class RefundSerializer(serializers.ModelSerializer[Refund]):
    reference = serializers.CharField(
        source="provider_reference", help_text="Stripe's refund id (re_…)."
    )

    class Meta:
        model = Refund
        fields = ["amount", "refunded_at", "reference"]


class PaymentSerializer(serializers.ModelSerializer[Payment]):
    outstanding_amount = serializers.DecimalField(max_digits=10, decimal_places=2)
    history = PaymentEventSerializer(source="events", many=True)
    refunds = RefundSerializer(
        source="refunds_made",
        many=True,
        help_text="The money given back to the card, oldest first: from the back office or "
        "Stripe's dashboard.",
    )

    class Meta:
        model = Payment
        fields = [
            "state",
            "currency",
            "hold_amount",
            "amount",
            "captured_amount",
            "refunded_amount",
            "outstanding_amount",
            "refunds",
            "history",
        ]
