# e2e/lab/lib/agent.sh — running the project's lvs-agent (from LAB_EXTRA_BINARIES, on PATH)
# inside the lab's namespaces, on the repository's examples (copied to /lab/examples).
# Node names in examples/nodes.yaml map to namespaces: director-1 → director, rs-N → rsN.

# lab_agent_node NS — the example node name a namespace plays.
lab_agent_node() {
    case $1 in
    director) echo director-1 ;;
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
        --registry "$LAB_RUN/agent.$ns.owned.json" --status-file "$LAB_RUN/agent.$ns.status"
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
