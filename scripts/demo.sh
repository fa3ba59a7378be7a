#!/usr/bin/env bash
# Fresh machine → demo: set up, then hash the benign demo photos and video.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/takeback demo --folder demo-media --output demo-hashes.jsonl
