# e2e/lab/lib/agent.sh — running the project's lvs-agent (from LAB_EXTRA_BINARIES, on PATH)
# inside the lab's namespaces, on the repository's examples (copied to /lab/examples).
# Node names in examples/nodes.yaml map to namespaces: director-1 → director, director-N →
# directorN, rs-N → rsN.

# lab_agent_node NS — the example node name a namespace plays.
lab_agent_node() {
    case $1 in
    director) echo director-1 ;;
    director[2-9]) echo "director-${1#director}" ;;
    rs*) echo "rs-${1#rs}" ;;
    *) echo "$1" ;;
    esac
}

# lab_agent_once NS MANIFEST... — one `lvs-agent --standalone --once` in NS; its status lands in
# $LAB_RUN/agent.NS.status (JSON), its ownership record in $LAB_RUN/agent.NS.owned.json.
lab_agent_once() {
    local ns=$1 node
    shift
    node=$(lab_agent_node "$ns")
    lab_ns "$ns" lvs-agent --standalone --manifests "$@" --node-name "$node" --once \
        --registry "$LAB_RUN/agent.$ns.owned.json" --failover-state "$LAB_RUN/agent.$ns.failover.json" \
        --status-file "$LAB_RUN/agent.$ns.status"
}

# lab_agent_status_field NS FIELD — a number from the last status of NS's agent.
lab_agent_status_field() {
    sed -n "s/.*\"$2\": *\([0-9]*\).*/\1/p" "$LAB_RUN/agent.$1.status" | head -n 1
}

# lab_agents_once MANIFEST... — the agent once on the director and every real server.
lab_agents_once() {
    local ns
    for ns in director $LAB_SERVERS; do
        lab_must lab_agent_once "$ns" "$@"
    done
}

# ---- the agent in loop mode -----------------------------------------------------------------
# lab_agent_start NS MANIFEST... — `lvs-agent --standalone` in loop mode in NS, in the
# background (process name "agent": lab_kill / lab_restart / lab_pid work on it; log in
# /run/lab/log/NS.agent.log). Same status and ownership files as lab_agent_once. Extra flags
# come from LAB_AGENT_ARGS (e.g. "--resync-seconds 5"). Marks the status (lab_agent_mark), so
# lab_agent_wait_synced waits for this agent's own first reconcile.
lab_agent_start() {
    local ns=$1 node
    shift
    node=$(lab_agent_node "$ns")
    lab_agent_mark "$ns"
    # shellcheck disable=SC2086 # LAB_AGENT_ARGS is a list of flags
    lab_spawn "$ns" agent lvs-agent --standalone $LAB_AGENT_ARGS \
        --registry "$LAB_RUN/agent.$ns.owned.json" --failover-state "$LAB_RUN/agent.$ns.failover.json" \
        --status-file "$LAB_RUN/agent.$ns.status" \
        --node-name "$node" --manifests "$@"
}

# lab_agents_put DIR NAME SOURCE NS... — SOURCE becomes DIR/NAME for the agents of NS...: the
# first time (no agent runs in the first NS) they are started on DIR after it; afterwards they
# are marked (lab_agent_mark) before the change, so lab_agent_wait_synced waits for the pass
# that picks it up.
lab_agents_put() {
    local dir=$1 name=$2 source=$3 ns
    shift 3
    if lab_running "$1" agent; then
        for ns in "$@"; do lab_agent_mark "$ns"; done
        lab_manifest_put "$dir" "$name" "$source" || return 1
    else
        lab_manifest_put "$dir" "$name" "$source" || return 1
        for ns in "$@"; do lab_agent_start "$ns" "$dir"; done
    fi
}

# lab_agent_stop NS — stop NS's agent (SIGTERM) and wait until it is gone. What it programmed
# stays in the kernel.
lab_agent_stop() { lab_kill "$1" agent; }

# lab_agent_status_mtime NS — the status file's modification time, to the nanosecond (busybox
# stat %y), or "none".
lab_agent_status_mtime() {
    stat -c %y "$LAB_RUN/agent.$1.status" 2>/dev/null || echo none
}

# lab_agent_mark NS — remember the status as it is now: the next lab_agent_wait_synced NS waits
# for a status written after this moment (a reconcile that started after it, in practice: the
# agent reconciles within a second of a manifest change). Mark, then change the manifests.
lab_agent_mark() { lab_agent_status_mtime "$1" >"$LAB_RUN/agent.$1.mark"; }

# lab_agent_synced_as NS [SERVICES] [VIPS] — true when NS's status is newer than its mark, says
# synced, has no failures, and (when given; "-" skips) has SERVICES director services and VIPS
# real-server VIPs.
lab_agent_synced_as() {
    local ns=$1 services=${2:--} vips=${3:--} status=$LAB_RUN/agent.$1.status
    [ "$(lab_agent_status_mtime "$ns")" != "$(cat "$LAB_RUN/agent.$ns.mark" 2>/dev/null)" ] || return 1
    grep -q '"synced": *true' "$status" 2>/dev/null || return 1
    grep -q '"failures": *\[\]' "$status" || return 1
    [ "$services" = - ] || [ "$(lab_agent_status_field "$ns" directorServices)" = "$services" ] || return 1
    [ "$vips" = - ] || [ "$(lab_agent_status_field "$ns" realServerVips)" = "$vips" ] || return 1
}

# lab_agent_wait_synced NS [SERVICES] [VIPS] [SECONDS] — wait (default 30 s) until NS's agent
# reports a sync after its mark, with the expected counts (see lab_agent_synced_as). On timeout
# prints the status and the agent's last log lines, and fails.
lab_agent_wait_synced() {
    local ns=$1 services=${2:--} vips=${3:--} seconds=${4:-30}
    lab_wait "$seconds" lab_agent_synced_as "$ns" "$services" "$vips" && return 0
    echo "lab: $ns's agent did not report a sync (services $services, VIPs $vips) within ${seconds}s; status:"
    sed 's/^/    /' "$LAB_RUN/agent.$ns.status" 2>/dev/null || echo "    (no status file)"
    lab_running "$ns" agent || echo "lab: $ns's agent is not running"
    lab_log_tail "$ns" agent 10
    return 1
}

# lab_agent_wait_all SERVICES VIPS NS... — lab_agent_wait_synced for several namespaces with the
# same expected counts.
lab_agent_wait_all() {
    local services=$1 vips=$2 ns
    shift 2
    for ns in "$@"; do lab_agent_wait_synced "$ns" "$services" "$vips" || return 1; done
}

# lab_agent_problems NS — the "problems" lines of NS's last status, one a line.
lab_agent_problems() {
    # The list ends at a line that is only "]": a problem line itself ends in "[Reason]".
    awk '/"problems": *\[\]/ { exit } /"problems": *\[/ { on = 1; next } on && /^ *\]/ { exit } on' \
        "$LAB_RUN/agent.$1.status" 2>/dev/null |
        sed -n 's/^ *"\(.*\)",\{0,1\}$/\1/p'
}

# lab_manifest_put DIR NAME SOURCE — install SOURCE as DIR/NAME in one step (a rename on the same
# filesystem), so a polling agent never reads a half-written file.
lab_manifest_put() {
    mkdir -p "$1" "$LAB_RUN/staging" || return 1
    cp "$3" "$LAB_RUN/staging/$2" && mv -f "$LAB_RUN/staging/$2" "$1/$2"
}

# lab_bench_manifests DIR SERVICES FIRST_PORT — the benchmarks' folder: examples/nodes.yaml,
# pool.yaml and bench.yaml with SERVICES direct-routing VirtualServers on $LAB_VIP, ports
# FIRST_PORT onwards (namespace bench, rr, health checks type None), all selecting the same two
# RealServers bench-rs1 and bench-rs2 (10.100.0.11 and .12).
lab_bench_manifests() {
    lab_manifest_put "$1" nodes.yaml /lab/examples/nodes.yaml || return 1
    lab_manifest_put "$1" pool.yaml /lab/examples/pool.yaml || return 1
    awk -v n="$2" -v first="$3" -v vip="$LAB_VIP" 'BEGIN {
        for (i = 0; i < n; i++) {
            printf "apiVersion: lvs.operator.io/v1alpha1\nkind: VirtualServer\nmetadata:\n  name: bench-%d\n  namespace: bench\n", first + i
            printf "spec:\n  address: %s\n  port: %d\n  scheduler: rr\n  forwarding:\n    method: DirectRouting\n", vip, first + i
            printf "  realServers:\n    selector:\n      matchLabels:\n        app: bench\n  healthCheck:\n    type: None\n---\n"
        }
        for (r = 1; r <= 2; r++)
            printf "apiVersion: lvs.operator.io/v1alpha1\nkind: RealServer\nmetadata:\n  name: bench-rs%d\n  namespace: bench\n  labels:\n    app: bench\nspec:\n  address: 10.100.0.%d\n---\n", r, 10 + r
    }' >"$LAB_RUN/bench.yaml" || return 1
    lab_manifest_put "$1" bench.yaml "$LAB_RUN/bench.yaml"
}

# ---- clients for agent scenarios ------------------------------------------------------------
# lab_fast_loop NS ADDR PORT COUNT — COUNT HTTP requests from NS inside one `ip netns exec`
# (cheaper than lab_client_loop, for hundreds of requests). Same results as lab_client_loop:
# $LAB_RUN/loop.txt, LAB_LOOP_FAILED, LAB_LOOP_SUMMARY, lab_loop_count; prints the summary only.
lab_fast_loop() {
    local ns=$1 addr=$2 port=$3 count=$4
    # shellcheck disable=SC2016 # the script runs in the namespace, with its own arguments
    lab_ns "$ns" sh -c '
        i=0
        while [ "$i" -lt "$3" ]; do
            i=$((i + 1))
            answer=$(printf "GET / HTTP/1.0\r\n\r\n" | nc -w 3 "$1" "$2" 2>/dev/null | tr -d "\r" | tail -n 1)
            echo "${answer:-FAIL}"
        done' sh "$addr" "$port" "$count" >"$LAB_RUN/loop.txt"
    lab_loop_results "$count tcp requests $ns -> $addr:$port"
}

# lab_bg_loop_start NAME NS PROTO ADDR PORT — requests from NS one after another in the
# background until lab_bg_loop_stop NAME. Each line of $LAB_RUN/bg.NAME.txt is
# "START_MS END_MS ANSWER" (ANSWER: the server's name, or FAIL).
lab_bg_loop_start() {
    local name=$1 ns=$2 proto=$3 addr=$4 port=$5
    rm -f "$LAB_RUN/bg.$name.stop"
    : >"$LAB_RUN/bg.$name.txt"
    (
        while [ ! -e "$LAB_RUN/bg.$name.stop" ]; do
            start=$(lab_now_ms)
            answer=$(lab_request "$ns" "$proto" "$addr" "$port") || answer=FAIL
            echo "$start $(lab_now_ms) $answer" >>"$LAB_RUN/bg.$name.txt"
        done
    ) &
    echo $! >"$LAB_RUN/bg.$name.pid"
}

# lab_bg_loop_count NAME [SINCE_MS] — requests NAME's loop finished (started at or after SINCE_MS).
lab_bg_loop_count() { awk -v s="${2:-0}" '$1 >= s { n++ } END { print n + 0 }' "$LAB_RUN/bg.$1.txt"; }

# lab_bg_loop_wait NAME COUNT [SINCE_MS] [SECONDS] — wait until COUNT requests (started at or
# after SINCE_MS) finished.
lab_bg_loop_wait() {
    lab_wait "${4:-30}" sh -c "[ \$(awk -v s='${3:-0}' '\$1 >= s { n++ } END { print n + 0 }' '$LAB_RUN/bg.$1.txt') -ge $2 ]" ||
        { echo "lab: loop $1: fewer than $2 requests finished"; return 1; }
}

# lab_bg_loop_stop NAME — stop the loop (after its current request) and summarize it: sets
# LAB_BG_TOTAL, LAB_BG_FAILED, LAB_BG_SUMMARY ("rs1=10 rs2=11") and prints them.
lab_bg_loop_stop() {
    local name=$1 fails
    : >"$LAB_RUN/bg.$name.stop"
    wait "$(cat "$LAB_RUN/bg.$name.pid")" 2>/dev/null
    LAB_BG_TOTAL=$(awk 'END { print NR }' "$LAB_RUN/bg.$name.txt")
    LAB_BG_FAILED=$(awk '$3 == "FAIL" { n++ } END { print n + 0 }' "$LAB_RUN/bg.$name.txt")
    LAB_BG_SUMMARY=$(awk '$3 != "FAIL" { print $3 }' "$LAB_RUN/bg.$name.txt" | sort | uniq -c |
        awk '{ printf "%s%s=%s", sep, $2, $1; sep = " " }')
    fails=$(awk 'NR == 1 { t0 = $1 } $3 == "FAIL" && n++ < 10 { printf "%s+%d", sep, $1 - t0; sep = "," }
        END { if (n > 10) printf ",..." }' "$LAB_RUN/bg.$name.txt")
    lab_say "background loop $name: $LAB_BG_TOTAL requests, answers ${LAB_BG_SUMMARY:-none};" \
        "failed $LAB_BG_FAILED${fails:+ (started at ms $fails after the first request)}"
}

# lab_bg_loop_failed_after NAME MS — failed requests of NAME's loop that started at or after MS.
lab_bg_loop_failed_after() { awk -v s="$2" '$1 >= s && $3 == "FAIL" { n++ } END { print n + 0 }' "$LAB_RUN/bg.$1.txt"; }
