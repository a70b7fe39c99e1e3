#!/usr/bin/env bash
# Schemathesis against the live app, from its own OpenAPI schema, signed in as a driver:
# every operation, every check, valid and invalid data, and the stateful phase (the
# schema's links). Starts and stops everything it needs.
set -euo pipefail
cd "$(dirname "$0")/.."

DB=${FUZZ_DB:-parking_fuzz}
PORT=${FUZZ_PORT:-8765}
source scripts/live_app.sh

"$BIN/st" run "$BASE_URL/api/schema/" \
    --header "Authorization: Bearer $token" \
    --checks all \
    --mode all \
    --phases examples,coverage,fuzzing,stateful \
    --workers "${FUZZ_WORKERS:-1}" \
    --max-examples "${FUZZ_MAX_EXAMPLES:-50}" \
    --seed "${FUZZ_SEED:-20261125}" \
    --no-color
