#!/usr/bin/env bash
# Set up rupture-nlp and run the main job on the bundled example transcripts:
# segment + tag them with the committed default model, then build the report.
# Outputs land in out/ (tagged.jsonl, tagged.csv, report/index.html).
set -euo pipefail
cd "$(dirname "$0")/.."
RUPTURE_SKIP_LABELSTUDIO=${RUPTURE_SKIP_LABELSTUDIO:-1} RUPTURE_SKIP_CHROMIUM=${RUPTURE_SKIP_CHROMIUM:-1} \
  bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
R=.venv/bin/rupture
mkdir -p out
$R tag corpora/examples --model models/rupture-3rs-minilm --out out/tagged.jsonl --csv out/tagged.csv
$R report out/tagged.jsonl --out out/report
echo "done: out/tagged.jsonl, out/tagged.csv, out/report/index.html"
