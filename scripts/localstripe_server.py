"""localstripe (a stateful Stripe-compatible server, for tests and the demo) on loopback only.

``python scripts/localstripe_server.py PORT [STORE]``. localstripe's own command listens on
every interface and writes its whole store to /tmp/localstripe.pickle on each change, shared
by every instance on the machine; this one listens on 127.0.0.1 and keeps its store in STORE,
or in memory without it (tests start each server from scratch)."""

import pickle
import sys
from pathlib import Path

from aiohttp import web
from localstripe import resources
from localstripe.server import app


def main() -> None:
    port = int(sys.argv[1])
    store_path = Path(sys.argv[2]) if len(sys.argv) > 2 else None
    store = resources.store

    def dump_to_disk(self) -> None:
        if store_path is not None:
            with store_path.open("wb") as file:
                pickle.dump(dict(self), file, protocol=pickle.HIGHEST_PROTOCOL)

    type(store).dump_to_disk = dump_to_disk
    if store_path is not None and store_path.exists():
        with store_path.open("rb") as file:
            dict.update(store, pickle.load(file))
    # The store is written on each change: a stop need not wait for idle keep-alive clients
    # (aiohttp's default waits up to 60 s).
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, shutdown_timeout=1)


if __name__ == "__main__":
    main()
