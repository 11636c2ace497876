#!/usr/bin/env bash
# Run a local Label Studio server for rupture-nlp from a source checkout: install | start | stop | status | creds.
#
#   bash scripts/labelstudio.sh install   # its own virtualenv (.venv-labelstudio); idempotent
#   bash scripts/labelstudio.sh start     # start on 127.0.0.1:$LABEL_STUDIO_PORT, wait for /health
#   bash scripts/labelstudio.sh status    # exit 0 if it runs and answers, 3 if not
#   bash scripts/labelstudio.sh stop      # SIGTERM to the server started by `start`
#   bash scripts/labelstudio.sh creds     # make sure credentials exist; print where (not what) they are
#
# The script itself ships in the package as rupture_nlp/data/labelstudio.sh (so `rupture ls server
# ...` works from an installed wheel); this file hands over to it with RUPTURE_LABELSTUDIO_HOME set
# to the checkout's root, so .venv-labelstudio/ and .labelstudio/ stay here. Its header lists the
# settings (LABEL_STUDIO_PORT, LABEL_STUDIO_BASE_DATA_DIR, LABEL_STUDIO_VENV, credentials...).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export RUPTURE_LABELSTUDIO_HOME="${RUPTURE_LABELSTUDIO_HOME:-$ROOT}"
exec bash "$ROOT/rupture_nlp/data/labelstudio.sh" "$@"
