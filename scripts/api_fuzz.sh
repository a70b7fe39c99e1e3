#!/usr/bin/env bash
# Schemathesis against the live app, from its own OpenAPI schema, signed in as a driver:
# every operation, every check. Starts and stops everything it needs.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-.venv/bin}
DB=${FUZZ_DB:-parking_fuzz}
PORT=${FUZZ_PORT:-8765}
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB"
export DJANGO_DEBUG=0 DJANGO_SECRET_KEY=fuzz-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz
export DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost
# Schemathesis sends thousands of requests: throttling would only get in its way here.
export API_THROTTLE_DRIVER_RATE=1000000/min API_THROTTLE_SIGN_IN_RATE=1000000/min \
    API_THROTTLE_SIGN_IN_ACCOUNT_RATE=1000000/min

dropdb -h 127.0.0.1 -U postgres --if-exists "$DB"
createdb -h 127.0.0.1 -U postgres "$DB"
"$BIN/python" manage.py migrate --noinput -v 0
token=$("$BIN/python" manage.py seed_demo --force | sed -n "s/.*Authorization: Bearer \([^']*\)'.*/\1/p")

"$BIN/gunicorn" parking_api.wsgi -c gunicorn.conf.py --bind "127.0.0.1:$PORT" --workers 2 \
    --log-level warning >/tmp/parking_fuzz_gunicorn.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do
    curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.2
done

"$BIN/st" run "http://127.0.0.1:$PORT/api/schema/" \
    --header "Authorization: Bearer $token" \
    --checks all \
    --workers "${FUZZ_WORKERS:-1}" \
    --max-examples "${FUZZ_MAX_EXAMPLES:-50}" \
    --seed "${FUZZ_SEED:-20261125}" \
    --no-color
