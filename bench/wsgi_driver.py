"""Sends GET current requests through the app's WSGI application, in-process.

    python /path/to/bench/wsgi_driver.py TOKENS_FILE WARM REQUESTS   (cwd: the app checkout)

Run as a script so it needs nothing of the served commit but its ``parking_api.wsgi``;
bench/instructions.py runs it under Valgrind.
"""

import io
import os
import sys

CURRENT = "/api/car_driver/parking_sessions/current"
BASE_ENVIRON = {
    "REQUEST_METHOD": "GET",
    "PATH_INFO": CURRENT,
    "SCRIPT_NAME": "",
    "QUERY_STRING": "",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "8000",
    "HTTP_HOST": "127.0.0.1",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "127.0.0.1",
    "wsgi.version": (1, 0),
    "wsgi.url_scheme": "http",
    "wsgi.multithread": False,
    "wsgi.multiprocess": True,
    "wsgi.run_once": False,
}


def main() -> None:
    tokens_file, warm, requests = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    sys.path[0] = os.getcwd()  # the served checkout, not this script's directory
    from parking_api.wsgi import application

    tokens = open(tokens_file).read().split()
    statuses: list[str] = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    for number in range(warm + requests):
        environ = BASE_ENVIRON | {
            "HTTP_AUTHORIZATION": f"Bearer {tokens[number % len(tokens)]}",
            "wsgi.input": io.BytesIO(),
            "wsgi.errors": sys.stderr,
        }
        result = application(environ, start_response)
        try:
            b"".join(result)
        finally:
            result.close()
    unexpected = sorted({status for status in statuses if status[:3] not in ("200", "404")})
    if unexpected:
        raise SystemExit(f"unexpected answers: {unexpected}")


if __name__ == "__main__":
    main()
