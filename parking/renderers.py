"""The receipt as a page for people: the JSON document ``parking.receipts.receipt_for`` builds,
rendered with a template in the request's language, for the app to show and print."""

from collections.abc import Mapping
from typing import Any

from django.template.loader import render_to_string
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
