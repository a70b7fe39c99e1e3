"""The receipt as a page for people: the JSON document ``parking.receipts.receipt_for`` builds,
rendered with a template in the request's language, for the app to show and print."""

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from django.template.loader import render_to_string
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer


class ReceiptPageRenderer(BaseRenderer):
    media_type = "text/html"
    format = "html"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> str:
        return render_to_string("parking/receipt.html", {"receipt": data})


class AcceptHeaderNegotiation(DefaultContentNegotiation):
    """DRF's choice by ``Accept``, without its ``?format=`` override: one way to ask for the
    page, and a query string never changes what a URL answers."""

    # The one setting it reads.
    settings = SimpleNamespace(URL_FORMAT_OVERRIDE=None)  # type: ignore[assignment]
