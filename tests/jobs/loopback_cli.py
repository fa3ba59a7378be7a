"""`takeback …` in its own process, allowed to fetch from exactly one loopback origin: the test's web site.

    python -m tests.jobs.loopback_cli 127.0.0.1:PORT worker --queues scans

Why a launcher: the SSRF guard's exception for an origin can only be set by code (``Settings.allowing_origins``,
never from the environment), so a real worker process that must crawl the test's loopback site gets it here, and
nowhere else.  Everything else is the ordinary command line (``takeback.cli.run``) with settings from the
environment.
"""

from __future__ import annotations

import sys

from takeback import config


def main() -> None:
    origin, *args = sys.argv[1:]
    load = config.load

    def load_allowing_origin() -> config.Settings:
        return load().allowing_origins(origin)

    config.load = load_allowing_origin  # type: ignore[assignment]
    from takeback.cli import run

    sys.argv = ["takeback", *args]
    run()


if __name__ == "__main__":
    main()
