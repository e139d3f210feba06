#!/opt/venv/bin/python
"""rq-dashboard as the image starts it: its password from the environment or a file, never argv.

RQ_DASHBOARD_PASSWORD or RQ_DASHBOARD_PASSWORD_FILE is read and checked like every secret setting
(placeholders refused); rq-dashboard then takes it from its own environment variable, so it is not
on the command line (`ps`, `docker inspect`). Other arguments go to rq-dashboard unchanged.
"""

from __future__ import annotations

import os
import sys

from ingest.errors import ConfigError
from ingest.settings import Settings


def main() -> None:
    try:
        password = Settings.from_env().rq_dashboard_password
    except ConfigError as exc:
        sys.exit(f"ingest-dashboard: error: {exc}")
    if not password:
        sys.exit("ingest-dashboard: error: set RQ_DASHBOARD_PASSWORD or RQ_DASHBOARD_PASSWORD_FILE")
    if any(arg.startswith("--password") for arg in sys.argv[1:]):
        sys.exit("ingest-dashboard: error: the password is read from the environment, not --password")
    os.environ.pop("RQ_DASHBOARD_PASSWORD_FILE", None)
    os.environ["RQ_DASHBOARD_PASSWORD"] = password
    from rq_dashboard.cli import main as dashboard

    dashboard()


if __name__ == "__main__":
    main()
