"""The production gunicorn settings plus a hook that writes down every request a worker
takes, so the restarts drill can tell requests the server accepted from ones it never saw."""

import os
from pathlib import Path

exec(Path(__file__).resolve().parent.parent.joinpath("gunicorn.conf.py").read_text())  # noqa: S102

ACCEPTED_LOG = os.environ.get("DRILL_ACCEPTED_LOG", os.devnull)


def pre_request(worker, req):
    request_id = dict(req.headers).get("X-REQUEST-ID", "")
    with open(ACCEPTED_LOG, "a") as accepted:
        accepted.write(request_id + "\n")
