#!/usr/bin/env bash
# `make run`: migrations, demo data, then the development server and, on PostgreSQL, a job
# worker beside it. Ctrl-C, or the server ending for any reason, stops both. SQLite has no
# job queue: jobs run in the web process after the commit (README, "Background jobs").
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-.venv/bin}
export DJANGO_DEBUG=1
"$BIN/python" manage.py migrate --noinput
"$BIN/python" manage.py seed_demo --docs-origin "http://${HOST:-127.0.0.1}:${PORT:-8000}" \
    --docs-origin "http://localhost:${PORT:-8000}"

engine=$("$BIN/python" manage.py shell -v 0 -c \
    'from django.apps import apps; print(apps.is_installed("procrastinate.contrib.django"))')
if [ "$engine" = True ]; then
    "$BIN/python" manage.py procrastinate worker &
    worker=$!
    trap 'kill -TERM $worker 2>/dev/null; wait $worker 2>/dev/null || true' EXIT
else
    echo "No job worker on SQLite: deferred jobs run in the web process after the commit, once," \
        "and scheduled ones do not run. DATABASE_URL=postgres://… make run starts a worker."
fi
"$BIN/python" manage.py runserver "${HOST:-127.0.0.1}:${PORT:-8000}"
