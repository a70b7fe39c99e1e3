from django.apps import AppConfig


class SmartKeysConfig(AppConfig):
    name = "smart_keys"
    verbose_name = "Smart keys"
