"""Production gunicorn settings (``gunicorn parking_api.wsgi`` reads this file by default).

Graceful restarts lose no accepted request: on SIGHUP the master starts new workers and
lets old ones finish what they hold; USR2 + WINCH + TERM upgrades the master itself; on
SIGTERM workers stop accepting and finish in-flight requests for up to
``graceful_timeout`` seconds. See README, "Deployment", and scripts/fault_drills.py.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
# gthread, not sync: under load, a reload with sync workers left connections queued in the
# listening socket until they were reset (scripts/fault_drills.py restarts); gthread
# workers take every queued connection. Two threads per worker keep the DB work per
# process small.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", 2))
backlog = 2048
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 30))
keepalive = 5
# Recycle workers now and then so a slow leak never becomes an outage.
max_requests = 10000
max_requests_jitter = 1000
# Without preload, SIGHUP reloads the code too.
preload_app = False
# The app logs one JSON line per request itself (parking_api.requests).
accesslog = None
errorlog = "-"
# The TLS-terminating proxy's address, whose X-Forwarded-* headers are trusted.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# None of its other headers: the app is served at the root, so it needs no SCRIPT_NAME or
# PATH_INFO from the proxy, and gunicorn's default would take them from whatever the proxy
# passes on, a client's own header included.
forwarder_headers = ""
# Above the front proxy's limits (deploy/nginx-bad-input.conf), so an over-long request
# line, or too many header fields, are refused there, with its JSON error pages, and never
# by gunicorn's HTML ones: nginx's 4 x 4 KiB header buffers hold fewer fields than this.
limit_request_line = 8190
limit_request_fields = 5000
