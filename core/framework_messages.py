"""Messages Django and DRF send through the API that their own Romanian catalogs lack (or
word wrongly). Nothing needs to import this module: makemessages reads it, so the project's
catalog, which Django reads before the libraries' (LOCALE_PATHS), translates them.
tests/test_translations.py checks that each is still one of the library's messages."""

from django.utils.translation import gettext_noop, ngettext_lazy

DJANGO_REST_FRAMEWORK = (
    gettext_noop("Not a valid string."),
    gettext_noop("Invalid input."),
    gettext_noop("Must be a valid boolean."),
    gettext_noop("Surrogate characters are not allowed: U+{code_point:X}."),
    # The driver API's 429, after "Request was throttled."
    gettext_noop("Expected available in {wait} second."),
    gettext_noop("Expected available in {wait} seconds."),
)

DJANGO = (
    # Sign-up's password rules (MinimumLengthValidator, NumericPasswordValidator).
    ngettext_lazy(
        "This password is too short. It must contain at least %d character.",
        "This password is too short. It must contain at least %d characters.",
    ),
    gettext_noop("This password is entirely numeric."),
)
