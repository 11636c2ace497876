#!/usr/bin/env bash
# Run a local Label Studio server for rupture-nlp: install | start | stop | status | creds.
# It ships in the package (rupture_nlp/data/labelstudio.sh); run it through the CLI or, in a
# source checkout, through scripts/labelstudio.sh (which hands over to this file):
#
#   rupture ls server install   # its own virtualenv (.venv-labelstudio); idempotent
#   rupture ls server start     # start on 127.0.0.1:$LABEL_STUDIO_PORT, wait for /health
#   rupture ls server status    # exit 0 if it runs and answers, 3 if not
#   rupture ls server stop      # SIGTERM to the server started by `start`
#   rupture ls server creds     # make sure credentials exist; print where (not what) they are
#
# Label Studio lives in its own virtualenv because its pins clash with ours (pyarrow,
# python-dateutil). The project talks to it only through label-studio-sdk.
#
# Environment (all optional):
#   RUPTURE_LABELSTUDIO_HOME     where .venv-labelstudio/ and .labelstudio/ go (default: the checkout's
#                                root when run from a checkout, else $XDG_DATA_HOME/rupture-nlp, i.e.
#                                ~/.local/share/rupture-nlp)
#   LABEL_STUDIO_PORT            port to serve on (default 8080)
#   LABEL_STUDIO_BASE_DATA_DIR   data directory: SQLite database, media, credentials, PID file, log
#                                (default: $RUPTURE_LABELSTUDIO_HOME/.labelstudio; created mode 0700)
#   LABEL_STUDIO_USERNAME        admin user created on first start (default admin@rupture.local)
#   LABEL_STUDIO_PASSWORD        its password              (default: random, see below)
#   LABEL_STUDIO_USER_TOKEN      its API token (legacy)    (default: random, see below)
#   LABEL_STUDIO_VENV            the virtualenv            (default $RUPTURE_LABELSTUDIO_HOME/.venv-labelstudio)
#   LABEL_STUDIO_VERSION         the label-studio version to install (default 1.23.2)
#   LABEL_STUDIO_START_TIMEOUT   seconds to wait for /health (default 180)
#   PYTHON                       interpreter for the virtualenv (default python3.11, else python3)
#
# Without LABEL_STUDIO_PASSWORD / LABEL_STUDIO_USER_TOKEN, `install`, `start` and `creds` generate
# random ones once and keep them in $LABEL_STUDIO_BASE_DATA_DIR/credentials.env (mode 0600; KEY=value
# lines, also LABEL_STUDIO_API_KEY for clients); later starts reuse them; values set in the
# environment take precedence. This script never prints a password or token.
# Clients use LABEL_STUDIO_URL=http://127.0.0.1:$PORT and LABEL_STUDIO_API_KEY (the token):
#   export "$(grep '^LABEL_STUDIO_API_KEY=' "$RUPTURE_LABELSTUDIO_HOME/.labelstudio/credentials.env")"
set -euo pipefail

if [[ -n "${RUPTURE_LABELSTUDIO_HOME:-}" ]]; then
  ROOT="$RUPTURE_LABELSTUDIO_HOME"
elif [[ -n "${XDG_DATA_HOME:-}" || -n "${HOME:-}" ]]; then
  ROOT="${XDG_DATA_HOME:-$HOME/.local/share}/rupture-nlp"
else
  echo "labelstudio: error: neither RUPTURE_LABELSTUDIO_HOME nor HOME is set" >&2; exit 1
fi
VENV="${LABEL_STUDIO_VENV:-$ROOT/.venv-labelstudio}"
LS_VERSION="${LABEL_STUDIO_VERSION:-1.23.2}"
PORT="${LABEL_STUDIO_PORT:-8080}"
DATA_DIR="${LABEL_STUDIO_BASE_DATA_DIR:-$ROOT/.labelstudio}"
START_TIMEOUT="${LABEL_STUDIO_START_TIMEOUT:-180}"
LS_USERNAME="" LS_PASSWORD="" LS_TOKEN=""  # set by load_credentials
CRED_FILE="$DATA_DIR/credentials.env"
PID_FILE="$DATA_DIR/server.pid"
LOG_FILE="$DATA_DIR/server.log"
STAMP="$VENV/.rupture-label-studio-version"
TEMPLATE_DIR="$VENV/rupture-empty-data"
HOST=127.0.0.1
URL="http://$HOST:$PORT"

die() { echo "labelstudio: error: $*" >&2; exit 1; }
say() { echo "labelstudio: $*" >&2; }

case "$PORT" in ''|*[!0-9]*) die "LABEL_STUDIO_PORT must be a port number, not '$PORT'";; esac

# --- helpers ------------------------------------------------------------------------------

# `health URL` prints nothing and succeeds when GET URL/health answers {"status": "UP"}.
health() {
  local body
  if command -v curl >/dev/null 2>&1; then
    body="$(curl -fsS --max-time 3 "$1/health" 2>/dev/null)" || return 1
  else
    body="$("$VENV/bin/python" -c 'import sys, urllib.request as u; print(u.urlopen(sys.argv[1], timeout=3).read().decode())' \
      "$1/health" 2>/dev/null)" || return 1
  fi
  [[ "$body" == *'"UP"'* ]]
}

# `port_in_use PORT`: something accepts TCP connections on 127.0.0.1:PORT.
port_in_use() {
  (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

# `pid_alive`: the PID file names a live process; prints the PID.
pid_alive() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(cat "$PID_FILE" 2>/dev/null)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # a PID reused by another program since is not our server
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "label-studio" || return 1
  echo "$pid"
}

# `listening_ports PGID`: TCP ports in LISTEN state held by any process of the process group.
listening_ports() {
  local pgid="$1" p inodes=""
  for p in /proc/[0-9]*; do
    [[ "$(awk '{print $5}' "$p/stat" 2>/dev/null)" == "$pgid" ]] || continue
    inodes+=" $(ls -l "$p/fd" 2>/dev/null | sed -n 's/.*socket:\[\([0-9]*\)\].*/\1/p' | tr '\n' ' ')"
  done
  [[ -n "${inodes// /}" ]] || return 0
  # /proc/net/tcp{,6}: local address column 2 (hex ip:port), state column 4 (0A = LISTEN), inode column 10.
  cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v inodes="$inodes" '
    BEGIN { n = split(inodes, a, " "); for (i = 1; i <= n; i++) want[a[i]] = 1 }
    $4 == "0A" && ($10 in want) { n = split($2, hp, ":"); print hp[n] }' | sort -u |
    while read -r hex; do echo $((16#$hex)); done
}

# `terminate PID`: SIGTERM to the server's process group (a backgrounded Label Studio ignores
# SIGINT) and wait up to 30 s for the server to exit; fails if it is still alive then.
terminate() {
  local pid="$1" i
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.5
  done
  return 1
}

# `new_secret`: 40 random hex characters (160 bits).
new_secret() {
  local s
  s="$(python3 -c 'import secrets; print(secrets.token_hex(20))' 2>/dev/null)" \
    || s="$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')"
  [[ "$s" =~ ^[0-9a-f]{40}$ ]] || die "cannot generate a random secret"
  echo "$s"
}

# `cred_value KEY`: the value of the last KEY=... line of the credentials file (empty if none).
cred_value() {
  [[ -f "$CRED_FILE" ]] || return 0
  sed -n "s/^$1=//p" "$CRED_FILE" | tail -n 1
}

# `make_data_dir`: create the data directory private to its owner (0700) when it is new.
make_data_dir() {
  [[ -d "$DATA_DIR" ]] && return 0
  mkdir -p "$(dirname "$DATA_DIR")" && mkdir -m 700 "$DATA_DIR" || die "cannot create the data directory $DATA_DIR"
}

# `load_credentials`: set LS_USERNAME / LS_PASSWORD / LS_TOKEN from the environment, else from the
# credentials file, else new random values stored there (mode 0600). Nothing secret is printed.
load_credentials() {
  make_data_dir
  local pw tok tmp new=0
  pw="$(cred_value LABEL_STUDIO_PASSWORD)"
  tok="$(cred_value LABEL_STUDIO_USER_TOKEN)"
  LS_USERNAME="${LABEL_STUDIO_USERNAME:-$(cred_value LABEL_STUDIO_USERNAME)}"
  LS_USERNAME="${LS_USERNAME:-admin@rupture.local}"
  if [[ -z "${LABEL_STUDIO_PASSWORD:-}" && -z "$pw" ]]; then pw="$(new_secret)"; new=1; fi
  if [[ -z "${LABEL_STUDIO_USER_TOKEN:-}" && -z "$tok" ]]; then tok="$(new_secret)"; new=1; fi
  LS_PASSWORD="${LABEL_STUDIO_PASSWORD:-$pw}"
  LS_TOKEN="${LABEL_STUDIO_USER_TOKEN:-$tok}"
  if (( new )); then
    tmp="$CRED_FILE.tmp.$$"
    ( umask 077
      { echo "# Label Studio credentials made by rupture's labelstudio.sh (keep private; mode 0600)"
        echo "LABEL_STUDIO_USERNAME=$LS_USERNAME"
        [[ -n "$pw" ]] && echo "LABEL_STUDIO_PASSWORD=$pw"
        [[ -n "$tok" ]] && echo "LABEL_STUDIO_USER_TOKEN=$tok" && echo "LABEL_STUDIO_API_KEY=$tok"
        true; } >"$tmp" ) && chmod 600 "$tmp" && mv -f "$tmp" "$CRED_FILE" \
      || { rm -f "$tmp"; die "cannot write $CRED_FILE"; }
    say "stored a new random password and API token in $CRED_FILE (mode 0600; not printed)"
    if [[ -e "$DATA_DIR/label_studio.sqlite3" ]]; then
      say "warning: $DATA_DIR already has a database: its admin user keeps the password and token it was created with"
    fi
  elif [[ -f "$CRED_FILE" ]]; then
    chmod 600 "$CRED_FILE"
  fi
}

# `server_env_for DIR CMD...`: run CMD with Label Studio's settings and data directory DIR.
server_env_for() {
  local dir="$1"; shift
  # Label Studio also reads bare USERNAME / PASSWORD / PORT / HOST: keep them out of its way.
  env -u USERNAME -u PASSWORD -u PORT -u HOST \
    LABEL_STUDIO_BASE_DATA_DIR="$dir" \
    LABEL_STUDIO_USERNAME="$LS_USERNAME" \
    LABEL_STUDIO_PASSWORD="$LS_PASSWORD" \
    LABEL_STUDIO_USER_TOKEN="$LS_TOKEN" \
    LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true \
    LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK=true \
    DJANGO_DB=sqlite \
    LATEST_VERSION_CHECK=false \
    COLLECT_ANALYTICS=false \
    SENTRY_DSN= FRONTEND_SENTRY_DSN= \
    "$@"
}

# --- commands -----------------------------------------------------------------------------

cmd_install() {
  load_credentials
  if [[ -x "$VENV/bin/label-studio" && -f "$STAMP" && "$(cat "$STAMP")" == "$LS_VERSION" ]]; then
    say "label-studio $LS_VERSION already installed in $VENV"
  else
    local py="${PYTHON:-}"
    if [[ -z "$py" ]]; then
      if command -v python3.11 >/dev/null 2>&1; then py=python3.11; else py=python3; fi
    fi
    command -v "$py" >/dev/null 2>&1 || die "no Python interpreter '$py' found (set PYTHON)"
    say "installing label-studio $LS_VERSION into $VENV (about a minute and ~1 GB)"
    rm -f "$STAMP"
    rm -rf "$TEMPLATE_DIR"
    [[ -x "$VENV/bin/python" ]] || "$py" -m venv "$VENV" || die "cannot create virtualenv $VENV"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q --upgrade pip \
      || die "pip upgrade failed in $VENV"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q "label-studio==$LS_VERSION" \
      || die "pip install label-studio==$LS_VERSION failed (see pip's output above)"
    [[ -x "$VENV/bin/label-studio" ]] || die "installation finished but $VENV/bin/label-studio is missing"
    echo "$LS_VERSION" > "$STAMP"
    say "installed label-studio $LS_VERSION"
  fi
  if [[ ! -f "$TEMPLATE_DIR/label_studio.sqlite3" ]]; then
    # An empty, fully migrated database: `start` copies it into a new data directory, which
    # saves the minute or more Label Studio spends on its migrations at a first start.
    say "preparing an empty migrated database (Label Studio's first-start migrations, about a minute)"
    local tmp="$TEMPLATE_DIR.tmp"
    rm -rf "$tmp"
    server_env_for "$tmp" "$VENV/bin/label-studio" version >"$VENV/rupture-template.log" 2>&1 \
      || die "Label Studio could not create its database; see $VENV/rupture-template.log"
    [[ -f "$tmp/label_studio.sqlite3" ]] || die "no database in $tmp; see $VENV/rupture-template.log"
    rm -rf "$TEMPLATE_DIR"
    mkdir -p "$TEMPLATE_DIR"
    mv "$tmp/label_studio.sqlite3" "$TEMPLATE_DIR/label_studio.sqlite3"
    rm -rf "$tmp"
    say "empty database ready"
  fi
}

cmd_status() {
  local pid
  if pid="$(pid_alive)"; then
    if health "$URL"; then
      echo "running: pid $pid, $URL, data $DATA_DIR"
      return 0
    fi
    echo "starting or unhealthy: pid $pid, $URL does not answer /health yet"
    return 3
  fi
  if health "$URL"; then
    echo "not started by this script, but a Label Studio answers at $URL (data dir $DATA_DIR has no live PID file)"
    return 3
  fi
  echo "not running ($URL)"
  return 3
}

cmd_start() {
  [[ -x "$VENV/bin/label-studio" ]] || die "Label Studio is not installed in $VENV: run 'rupture ls server install' (or 'bash scripts/labelstudio.sh install' in a checkout) first"
  local pid
  if pid="$(pid_alive)"; then
    if health "$URL"; then
      say "already running: pid $pid, $URL"
      return 0
    fi
    die "a server (pid $pid) from $PID_FILE runs but $URL does not answer; run 'stop' first"
  fi
  if port_in_use "$PORT"; then
    die "port $PORT on $HOST is already in use by another process; Label Studio would silently move to port $((PORT + 1)). Free it or set LABEL_STUDIO_PORT"
  fi
  load_credentials
  if [[ ! -e "$DATA_DIR/label_studio.sqlite3" && -f "$TEMPLATE_DIR/label_studio.sqlite3" ]]; then
    cp "$TEMPLATE_DIR/label_studio.sqlite3" "$DATA_DIR/label_studio.sqlite3"
  fi
  rm -f "$PID_FILE"
  say "starting Label Studio on $URL (data: $DATA_DIR, log: $LOG_FILE)"
  local t0=$SECONDS log_start=0
  [[ -f "$LOG_FILE" ]] && log_start=$(wc -c <"$LOG_FILE")
  # setsid: the server leads its own session and process group, so `stop` reaches any worker it
  # spawns; the inner shell records its own PID, which `exec` hands on to Label Studio itself.
  server_env_for "$DATA_DIR" setsid bash -c 'echo $$ > "$0"; exec "$@"' "$PID_FILE" \
    "$VENV/bin/label-studio" start --no-browser --internal-host "$HOST" --port "$PORT" \
    </dev/null >>"$LOG_FILE" 2>&1 &
  local launcher=$! i
  for i in $(seq 1 50); do [[ -s "$PID_FILE" ]] && break; sleep 0.1; done
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || { kill -TERM "$launcher" 2>/dev/null || true; die "could not launch Label Studio; see $LOG_FILE"; }
  while (( SECONDS - t0 < START_TIMEOUT )); do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PID_FILE"
      die "Label Studio exited during start-up; see $LOG_FILE"
    fi
    local ports
    ports="$(listening_ports "$pid")"
    # Label Studio moves to the next free port when its port is taken (it prints "Port N is in use").
    if tail -c +"$((log_start + 1))" "$LOG_FILE" 2>/dev/null | grep -q "Port $PORT is in use" \
       || { [[ -n "$ports" ]] && ! grep -qx "$PORT" <<<"$ports"; }; then
      terminate "$pid"
      rm -f "$PID_FILE"
      die "port $PORT was taken while Label Studio started and it moved to another port (${ports//$'\n'/ }); stopped it. Free port $PORT or set LABEL_STUDIO_PORT"
    fi
    if [[ -n "$ports" ]] && health "$URL"; then
      say "ready after $((SECONDS - t0)) s: pid $pid, $URL"
      [[ -z "${LABEL_STUDIO_USER_TOKEN:-}" ]] && say "API token: LABEL_STUDIO_API_KEY in $CRED_FILE"
      echo "LABEL_STUDIO_URL=$URL"
      return 0
    fi
    sleep 1
  done
  terminate "$pid"
  rm -f "$PID_FILE"
  die "Label Studio did not answer $URL/health within $START_TIMEOUT s; stopped it; see $LOG_FILE"
}

cmd_stop() {
  local pid
  if ! pid="$(pid_alive)"; then
    rm -f "$PID_FILE"
    say "not running (no live PID in $PID_FILE)"
    return 0
  fi
  if terminate "$pid"; then
    rm -f "$PID_FILE"
    say "stopped (pid $pid)"
    return 0
  fi
  die "server pid $pid did not stop within 30 s of SIGTERM"
}

cmd_creds() {
  load_credentials
  if [[ -f "$CRED_FILE" ]]; then
    echo "credentials: $CRED_FILE (mode 0600; values set in the environment take precedence)"
  else
    echo "credentials: from the environment (LABEL_STUDIO_PASSWORD, LABEL_STUDIO_USER_TOKEN); no file"
  fi
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  creds) cmd_creds ;;
  *) echo "usage: labelstudio.sh install|start|stop|status|creds" >&2; exit 2 ;;
esac
