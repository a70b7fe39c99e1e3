#!/usr/bin/env bash
# `make run`: localstripe, migrations, demo data, then the development server and, on
# PostgreSQL, a job worker beside it. Ctrl-C, or the server ending for any reason, stops all.
# SQLite has no job queue: jobs run in the web process after the commit (README, "Background jobs").
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-.venv/bin}
export DJANGO_DEBUG=1
# Payments go to localstripe on loopback (README, "Payments"), its store kept between runs.
LOCALSTRIPE_PORT=${LOCALSTRIPE_PORT:-8420}
export STRIPE_API_BASE=${STRIPE_API_BASE:-http://127.0.0.1:$LOCALSTRIPE_PORT}
"$BIN/python" scripts/localstripe_server.py "$LOCALSTRIPE_PORT" .localstripe.pickle &
localstripe=$!
stop_all() {
    kill -TERM ${worker:-} $localstripe 2>/dev/null
    wait ${worker:-} $localstripe 2>/dev/null || true
}
trap stop_all EXIT
# The demo card and hold are saved at localstripe by seed_demo: wait until it listens.
for _ in $(seq 1 100); do
    "$BIN/python" -c "import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 0.2)" \
        "$LOCALSTRIPE_PORT" 2>/dev/null && break
    sleep 0.1
done
"$BIN/python" manage.py migrate --noinput
"$BIN/python" manage.py seed_demo --api-origin "http://${HOST:-127.0.0.1}:${PORT:-8000}" \
    --docs-origin "http://${HOST:-127.0.0.1}:${PORT:-8000}" --docs-origin "http://localhost:${PORT:-8000}"

engine=$("$BIN/python" manage.py shell -v 0 -c \
    'from django.apps import apps; print(apps.is_installed("procrastinate.contrib.django"))')
if [ "$engine" = True ]; then
    "$BIN/python" manage.py procrastinate worker &
    worker=$!
else
    echo "No job worker on SQLite: deferred jobs run in the web process after the commit, once," \
        "and scheduled ones do not run. DATABASE_URL=postgres://… make run starts a worker."
fi
"$BIN/python" manage.py runserver "${HOST:-127.0.0.1}:${PORT:-8000}"
