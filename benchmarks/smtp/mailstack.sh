#!/bin/bash
# Start or stop twisted-mail-stack (twistd mailstack) for the SMTP benchmark:
# MX on 127.0.0.1:$PORT, Maildir under $DIR, user bench@bench.test / benchpass.
#   mailstack.sh start|stop          env: DIR (/tmp/bench-mailstack), PORT (2530), VENV,
#   STORE=memory to measure the protocol without the Maildir store (nothing durable: diagnosis only)
set -eu
DIR=${DIR:-/tmp/bench-mailstack}; PORT=${PORT:-2530}; STORE=${STORE:-maildir}
VENV=${VENV:-/tmp/devvenv}
start() {
  rm -rf "$DIR"; mkdir -p "$DIR"
  cat > "$DIR/mailstack.toml" <<TOML
data_dir = "$DIR/data"
hostname = "mailstack.bench.localhost"
domains = ["bench.test"]
users = ["bench@bench.test:benchpass"]
[store]
backend = "$STORE"
[listeners]
smtp = ["tcp:$PORT:interface=127.0.0.1:backlog=256"]
submission = []
submissions = []
pop3 = []
pop3s = []
imap = []
imaps = []
[smtp]
max_connections = 1000
max_connections_per_ip = 1000
TOML
  (cd "$DIR" && "$VENV/bin/twistd" --pidfile "$DIR/twistd.pid" --logfile "$DIR/twistd.log" \
      mailstack --config "$DIR/mailstack.toml")
  for _ in $(seq 100); do grep -q "mailstack ready" "$DIR/twistd.log" 2>/dev/null && return; sleep 0.1; done
  echo "mailstack did not start; see $DIR/twistd.log" >&2; exit 1
}
stop() {
  [ -f "$DIR/twistd.pid" ] || return 0
  local pid; pid=$(cat "$DIR/twistd.pid"); kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
}
"$1"
