"""The accounts app's background jobs (core.jobs; README, "Background jobs")."""

from oauth2_provider.models import clear_expired
from procrastinate.contrib.django import app


# django-oauth-toolkit's `cleartokens`: expired and revoked tokens and old grants.
@app.periodic(cron="17 3 * * *")
@app.task(name="accounts.clear_expired_tokens", queueing_lock="accounts.clear_expired_tokens")
def clear_expired_tokens(timestamp: int) -> None:
    clear_expired()  # type: ignore[no-untyped-call]  # django-oauth-toolkit has no types
