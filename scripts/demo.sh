#!/usr/bin/env bash
# Fresh machine → demo: set up, then run the service with a benign demo case (takeback serve --demo, SQLite in its
# own data dir). It prints where to click and how to sign in; Ctrl+C stops it, running it again reuses the demo.
# Extra arguments go to `takeback serve` (e.g. --port 8800, --data-dir DIR, --demo-new-password).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/takeback serve --demo "$@"
