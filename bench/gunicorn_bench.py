"""gunicorn settings of the benchmark, the same for the project and the floor.

The issue's setup: 2 sync workers, one request at a time each, no keep-alive. Pinned here
rather than taken from the served checkout's ``gunicorn.conf.py``, whose settings change from
commit to commit (``threads`` > 1 silently turns sync into gthread, with keep-alive);
``--app-gunicorn-config`` serves with the checkout's file instead. The bind address, the
number of workers and the log file come from the command line.
"""

worker_class = "sync"
threads = 1
timeout = 30
accesslog = None
errorlog = "-"
loglevel = "info"
