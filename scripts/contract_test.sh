#!/usr/bin/env bash
# The contract as a mobile team meets it: generates a Python client (openapi-python-client)
# and TypeScript types (openapi-typescript) from the live app's schema, drives the whole
# journey with the client (contract/journey.py, type-checked by mypy --strict first), and
# type-checks the API document's example against the TypeScript types. Starts and stops
# everything it needs; the generated code goes to contract/build/ (not in git).
set -euo pipefail
cd "$(dirname "$0")/.."

DB=${CONTRACT_DB:-parking_contract}
PORT=${CONTRACT_PORT:-8766}
BUILD=contract/build
source scripts/live_app.sh

# openapi-python-client formats what it generates with the project's ruff.
PATH="$(cd "$BIN" && pwd):$PATH"
rm -rf "$BUILD" && mkdir -p "$BUILD"
curl -fsS "$BASE_URL/api/schema/?format=json" -o "$BUILD/openapi.json"

"$BIN/openapi-python-client" generate --path "$BUILD/openapi.json" \
    --config contract/openapi-python-client.yaml --meta none \
    --output-path "$BUILD/parking_client" --fail-on-warning
"$BIN/mypy" --config-file contract/mypy.ini contract/journey.py
PYTHONPATH="$BUILD" "$BIN/python" contract/journey.py "$BASE_URL"

(cd contract && npm ci --no-audit --no-fund --silent)
contract/node_modules/.bin/openapi-typescript "$BUILD/openapi.json" -o "$BUILD/schema.d.ts"
"$BIN/python" - "$BUILD/example.ts" <<'PY'
import sys
from pathlib import Path

# An object literal in a typed declaration: TypeScript checks every member, and refuses
# any the schema does not have.
example = Path("docs/examples/current-parking-session.json").read_text()
Path(sys.argv[1]).write_text(
    'import type { components } from "./schema";\n\n'
    'export const example: components["schemas"]["ParkingSessionBody"] = '
    + example + ";\n"
)
PY
contract/node_modules/.bin/tsc --noEmit --strict --exactOptionalPropertyTypes "$BUILD/example.ts"
echo "contract: the Python client drove the journey; the example type-checks"
