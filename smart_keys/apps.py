from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SmartKeysConfig(AppConfig):
    name = "smart_keys"
    verbose_name = _("Smart keys")
