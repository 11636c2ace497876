#!/usr/bin/env bash
# Run the whole rupture-nlp test suite (installs what is missing first; see scripts/setup.sh).
#   bash scripts/test.sh [--fast] [pytest arguments...]
# --fast leaves out the tests marked `slow` (pytest -m "not slow"); CI runs everything (no flag).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/ruff check rupture_nlp tests scripts setup.py            # lint (configured in pyproject.toml)
.venv/bin/ruff format --check rupture_nlp tests scripts setup.py   # formatting: fix with `ruff format` on the same paths
args=()
for arg in "$@"; do
  if [[ "$arg" == "--fast" ]]; then args+=(-m "not slow"); else args+=("$arg"); fi
done
exec .venv/bin/python -m pytest -q -p no:cacheprovider ${args[@]+"${args[@]}"}
