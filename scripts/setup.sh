#!/usr/bin/env bash
# Install everything rupture-nlp needs, idempotently: the project venv (.venv) with the pinned
# CPU torch, the Label Studio server in its own venv (.venv-labelstudio), and Chromium for the
# HTML report test. Re-running is cheap: each step is skipped when its stamp is current.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1

stamp=.venv/.rupture-installed
want=$(cat pyproject.toml setup.py | sha256sum | cut -c1-16)  # the packaging config
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing the project into .venv" >&2
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  # torch first and exactly pinned: a looser spec would pull a multi-GB CUDA build.
  .venv/bin/pip install -q "torch==2.13.0"
  .venv/bin/pip install -q -e '.[dev]'
  echo "$want" > "$stamp"
fi

if [ "${RUPTURE_SKIP_LABELSTUDIO:-0}" != "1" ] && [ -f scripts/labelstudio.sh ]; then
  bash scripts/labelstudio.sh install
fi

if [ "${RUPTURE_SKIP_CHROMIUM:-0}" != "1" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian's chromium (for the HTML report test)" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "setup: could not install chromium; the screenshot test will be skipped" >&2
  else
    echo "setup: chromium not found and not root; the screenshot test will be skipped" >&2
  fi
fi
