# e2e/kmock/common.sh — sourced by e2e/kmock/smoke and e2e/kmock/pools (from the repository's
# root): the emulator's private venv, starting the emulator, a kubeconfig for it.
#
# Expects `venv` (the venv directory) and `out` (the log directory) to be set, and a `pids`
# array the caller's cleanup kills.

log() { printf 'kmock: %s\n' "$*"; }

# kmock_tools: a private venv with kmock (pinned) and PyYAML, created when missing.
kmock_tools() {
    if ! "$venv/bin/python" -c 'import kmock, yaml' 2>/dev/null; then
        log "creating $venv (pip install -r e2e/kmock/requirements.txt)"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q -r e2e/kmock/requirements.txt
    fi
}

# kmock_start_emulator PORT: a fresh emulator on 127.0.0.1:PORT (its pid appended to `pids`),
# logging each request to $out/emulator.log; returns once it answers /version.
kmock_start_emulator() {
    local port=$1 i
    : >"$out/emulator.log"
    "$venv/bin/python" e2e/kmock/server.py --host 127.0.0.1 --port "$port" --log "$out/emulator.log" \
        >"$out/emulator.out" 2>&1 &
    pids+=($!)
    for i in $(seq 50); do
        curl -fsS "http://127.0.0.1:$port/version" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    cat "$out/emulator.out"
    log "the emulator did not start"
    return 1
}

# kmock_kubeconfig URL FILE: a kubeconfig for the emulator at URL (plain http, no user).
kmock_kubeconfig() {
    cat >"$2" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kmock
  cluster: {server: "$1"}
users:
- name: kmock
  user: {}
contexts:
- name: kmock
  context: {cluster: kmock, user: kmock}
current-context: kmock
EOF
}
