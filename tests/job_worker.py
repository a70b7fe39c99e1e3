"""The project's job worker (`manage.py procrastinate worker`) with the tests' tasks loaded:
``python -m tests.job_worker [MODULE …] -- [WORKER OPTION …]``."""

import importlib
import os
import sys

import django
from django.core.management import execute_from_command_line


def main(argv: list[str]) -> None:
    modules, _, worker_options = " ".join(argv).partition(" -- ")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "parking_api.settings")
    django.setup()
    for module in modules.split():
        importlib.import_module(module)
    execute_from_command_line(["manage.py", "procrastinate", "worker", *worker_options.split()])


if __name__ == "__main__":
    main(sys.argv[1:])
