"""The `takeback` console script's entry point.

Why a module of its own: where hashing workers cannot be forked (another thread running, macOS, Windows; see
`protect.batch.start_method`) they are started with multiprocessing's "spawn", which makes each worker re-run the
imports of the script that started the parent.  The script imports only this module, and this module imports
the CLI (seconds of imports: the web app, the database, the crawler) only when it runs, so every worker starts with
just what hashing needs instead of paying the whole CLI's start-up again.
"""

from __future__ import annotations


def main() -> None:
    from takeback.cli import run

    run()
