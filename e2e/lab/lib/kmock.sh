# e2e/lab/lib/kmock.sh — agents in Kubernetes mode against the API emulator that e2e/kmock/smoke
# runs on the host (the VM booted with LAB_NET=user: the host's loopback is 10.0.2.2).
#
# The VM's root namespace gets the user-network NIC (10.0.2.15) and 10.100.0.1 on br0, forwards
# and masquerades the namespaces' traffic to 10.0.2.2 only (each namespace has a host route to
# it via 10.100.0.1; nothing else changes). Agents run with NODE_NAME and a kubeconfig pointing
# at http://10.0.2.2:18473 (and SSL_CERT_FILE: kube-rs' rustls loads the system's CA roots even
# for an http:// server and fails without any; the image has none, so a public root,
# kmock-smoke.d/ca.pem = ISRG Root X1, stands in).

LAB_KMOCK_HOST=10.0.2.2
LAB_KMOCK_PORT=18473
LAB_KMOCK_API=http://$LAB_KMOCK_HOST:$LAB_KMOCK_PORT

# lab_kmock_get PATH [NS] — the body of a GET to the emulator, from namespace NS (default: the
# VM's root namespace).
lab_kmock_get() {
    local exec=''
    [ -n "${2:-}" ] && exec="/sbin/ip netns exec $2"
    # stdin stays open a while: an early half-close can make aiohttp drop the answer
    # shellcheck disable=SC2086 # exec is a command prefix or nothing
    { printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$1" "$LAB_KMOCK_HOST:$LAB_KMOCK_PORT"; sleep 2; } |
        $exec nc -w 5 "$LAB_KMOCK_HOST" "$LAB_KMOCK_PORT" 2>/dev/null | sed '1,/^\r\{0,1\}$/d'
}

# lab_kmock_patch PATH JSON — a JSON merge patch of PATH on the emulator (as `kubectl patch
# --type merge`: lists are replaced whole), from the VM's root namespace; fails unless the
# emulator answers 200.
lab_kmock_patch() {
    local length status
    length=$(printf '%s' "$2" | wc -c)
    status=$({
        printf 'PATCH %s HTTP/1.0\r\nHost: %s\r\nContent-Type: application/merge-patch+json\r\nContent-Length: %s\r\n\r\n%s' \
            "$1" "$LAB_KMOCK_HOST:$LAB_KMOCK_PORT" "$length" "$2"
        sleep 2
    } | nc -w 5 "$LAB_KMOCK_HOST" "$LAB_KMOCK_PORT" 2>/dev/null | head -n 1 | tr -d '\r')
    case $status in
    HTTP/1.[01]\ 200*) return 0 ;;
    *) lab_say "PATCH $1: ${status:-no answer}"; return 1 ;;
    esac
}

# lab_kmock_reaches [NS] — NS (default: the root namespace) gets an answer from the emulator.
lab_kmock_reaches() { lab_kmock_get /version "${1:-}" | grep -q gitVersion; }

_lab_kmock_find_nic() {
    local dev
    for dev in /sys/class/net/*; do
        [ -e "$dev/device" ] && LAB_KMOCK_NIC=${dev##*/} && return 0
    done
    return 1
}

# lab_kmock_nic — bring up the user-network NIC (before lab_topology: it is the only one with a
# device) and wait for the emulator; SKIPs without either.
lab_kmock_nic() {
    lab_modprobe virtio_pci virtio_net || lab_say "modprobe virtio_pci virtio_net failed"
    LAB_KMOCK_NIC=''
    lab_wait 10 _lab_kmock_find_nic && _lab_kmock_find_nic
    [ -n "$LAB_KMOCK_NIC" ] || { ls -l /sys/class/net; lab_skip "no NIC (boot with LAB_NET=user: e2e/kmock/smoke does)"; }
    lab_must ip link set "$LAB_KMOCK_NIC" up
    lab_must ip addr add 10.0.2.15/24 dev "$LAB_KMOCK_NIC"
    lab_wait 20 lab_kmock_reaches || lab_skip "no Kubernetes API emulator at $LAB_KMOCK_API (run e2e/kmock/smoke)"
    lab_say "emulator answers at $LAB_KMOCK_API on $LAB_KMOCK_NIC"
}

# lab_kmock_routes NS... — after lab_topology: the namespaces reach the emulator through
# 10.100.0.1 (masqueraded); writes $LAB_RUN/kubeconfig.
lab_kmock_routes() {
    local ns
    lab_must ip addr add "$LAB_NET4.1/24" dev br0
    lab_must sysctl -qw net.ipv4.ip_forward=1
    lab_must lab_modprobe nf_tables nft_chain_nat nft_masq
    printf '%s\n' "table ip kmock-smoke {" "    chain post {" \
        "        type nat hook postrouting priority srcnat;" \
        "        ip saddr $LAB_NET4.0/24 ip daddr $LAB_KMOCK_HOST oifname \"$LAB_KMOCK_NIC\" masquerade" \
        "    }" "}" | lab_must nft -f -
    for ns in "$@"; do lab_must ip -n "$ns" route add "$LAB_KMOCK_HOST/32" via "$LAB_NET4.1"; done
    printf '%s\n' "apiVersion: v1" "kind: Config" "clusters:" "- name: kmock" "  cluster:" \
        "    server: $LAB_KMOCK_API" "users:" "- name: kmock" "  user: {}" "contexts:" "- name: kmock" \
        "  context: {cluster: kmock, user: kmock}" "current-context: kmock" >"$LAB_RUN/kubeconfig"
}

# lab_kmock_agent NS [VAR=VALUE...] — lvs-agent in Kubernetes mode in NS (process name "agent"),
# with extra environment.
lab_kmock_agent() {
    local ns=$1 node
    shift
    node=$(lab_agent_node "$ns")
    lab_spawn "$ns" agent env SSL_CERT_FILE=/lab/scenarios/kmock-smoke.d/ca.pem RUST_LOG="${LAB_AGENT_LOG:-info,kube=debug}" \
        KUBECONFIG="$LAB_RUN/kubeconfig" NODE_NAME="$node" NODE_IP="$(lab_ip4 "$ns")" "$@" \
        lvs-agent --registry "$LAB_RUN/agent.$ns.owned.json" --failover-state "$LAB_RUN/agent.$ns.failover.json"
}
