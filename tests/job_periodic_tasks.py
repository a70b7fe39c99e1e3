"""A task scheduled every second, loaded only by the workers of the test that wants it."""

from procrastinate.contrib.django import app

from tests.job_tasks import _end_run, _start_run


@app.periodic(cron="* * * * * *")
@app.task(name="tests.every_second")
def every_second(timestamp: int) -> None:
    _end_run(_start_run(f"tick {timestamp}", 0))
