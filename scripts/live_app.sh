# Sourced by scripts/api_fuzz.sh and scripts/contract_test.sh: serves the app as deployed
# (gunicorn, DJANGO_DEBUG off) on loopback port $PORT, over a fresh PostgreSQL database $DB
# seeded with the demo data, until the sourcing script exits. Sets $BASE_URL, and $token:
# a bearer token of driver@example.com.
BIN=${BIN:-.venv/bin}
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB"
export DJANGO_DEBUG=0 DJANGO_SECRET_KEY=live-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz
export DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost
# Thousands of requests from one client: throttling would only get in the way here.
export API_THROTTLE_DRIVER_RATE=1000000/min API_THROTTLE_SIGN_IN_RATE=1000000/min
export API_THROTTLE_SIGN_IN_ACCOUNT_RATE=1000000/min

# Card endpoints talk to a localstripe of the script's own, in memory.
STRIPE_PORT=${STRIPE_PORT:-$((PORT + 1))}
export STRIPE_API_BASE="http://127.0.0.1:$STRIPE_PORT" STRIPE_API_KEY=sk_test_localstripe
"$BIN/python" scripts/localstripe_server.py "$STRIPE_PORT" &
localstripe=$!
trap 'kill $localstripe 2>/dev/null; wait $localstripe 2>/dev/null || true' EXIT

dropdb -h 127.0.0.1 -U postgres --if-exists "$DB"
createdb -h 127.0.0.1 -U postgres "$DB"
"$BIN/python" manage.py migrate --noinput -v 0
for _ in $(seq 1 100); do
    curl -s "http://127.0.0.1:$STRIPE_PORT" >/dev/null 2>&1 && break  # localstripe listens
    sleep 0.1
done
token=$("$BIN/python" manage.py seed_demo --force | sed -n "s/^ *TOKEN=//p" | head -n 1)

"$BIN/gunicorn" parking_api.wsgi -c gunicorn.conf.py --bind "127.0.0.1:$PORT" --workers 2 \
    --log-level warning >"/tmp/${DB}_gunicorn.log" 2>&1 &
server=$!
trap 'kill $server $localstripe 2>/dev/null; wait $server $localstripe 2>/dev/null || true' EXIT
BASE_URL="http://127.0.0.1:$PORT"
for _ in $(seq 1 50); do
    curl -fsS "$BASE_URL/healthz" >/dev/null 2>&1 && break
    sleep 0.2
done
