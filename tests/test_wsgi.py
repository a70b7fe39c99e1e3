"""The WSGI entry point gunicorn serves."""

import gc
import importlib

from django.urls import clear_url_caches, get_resolver


def test_startup_objects_are_frozen_out_of_the_garbage_collectors_reach():
    gc.unfreeze()
    clear_url_caches()

    wsgi = importlib.reload(importlib.import_module("parking_api.wsgi"))

    assert callable(wsgi.application)
    assert "url_patterns" in vars(get_resolver())  # the URLconf is loaded before the freeze
    assert gc.get_freeze_count() > 10_000
    gc.unfreeze()
