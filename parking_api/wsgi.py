import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "parking_api.settings")

application = get_wsgi_application()

# Import the URLconf, and with it every view, now rather than on the first request. Then
# take everything loaded so far out of the cyclic garbage collector's reach: it lives as
# long as the worker, and each full collection would otherwise walk all of it again
# (about 100 ms on our 2-core machines, a stall for every request queued behind it).
get_resolver().url_patterns  # noqa: B018
gc.freeze()
