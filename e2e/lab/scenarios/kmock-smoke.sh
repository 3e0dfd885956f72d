#!/bin/sh
# kmock-smoke — full stack against a Kubernetes API emulator on the host (e2e/kmock/smoke): lvs-agent in Kubernetes mode on director, rs1, rs2 programs what lvs-controller wrote; requests answered by both real servers; the VirtualServer turns Ready 2/2
# lab-timeout: 240
# lab-needs-host: e2e/kmock/smoke
#
# Not part of --all's purpose on its own: it needs the host side that e2e/kmock/smoke starts
# (the emulator on the host's 127.0.0.1:18473 with the CRDs, examples/nodes.yaml and
# examples/virtualserver.yaml applied, and lvs-controller running against it) and the VM booted
# with LAB_NET=user (qemu's user network: the host's loopback is 10.0.2.2). Without the emulator
# it SKIPs.
#
# The VM's root namespace gets the user-network NIC (10.0.2.15) and 10.100.0.1 on br0, forwards
# and masquerades the namespaces' traffic to 10.0.2.2 only (each namespace has a host route to
# it via 10.100.0.1; nothing else changes). The agents run with NODE_NAME and a kubeconfig
# pointing at http://10.0.2.2:18473 (and SSL_CERT_FILE: kube-rs' rustls loads the system's CA
# roots even for an http:// server and fails without any; the image has none, so a public root,
# kmock-smoke.d/ca.pem = ISRG Root X1, stands in), watch their own LvsNodeConfig and write its status; the
# controller on the host turns that into the VirtualServer's status.
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip
HOST=10.0.2.2
PORT=18473
API=http://$HOST:$PORT
VIP=$LAB_VIP
VS_PATH=/apis/lvs.operator.io/v1alpha1/namespaces/default/virtualservers/web

# api_get PATH — the body of a GET to the emulator, from the VM's root namespace.
api_get() {
    # stdin stays open a while: an early half-close can make aiohttp drop the answer
    { printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$1" "$HOST:$PORT"; sleep 2; } | nc -w 5 "$HOST" "$PORT" 2>/dev/null |
        sed '1,/^\r\{0,1\}$/d'
}

lab_step "the user-network NIC: 10.0.2.15, the host (emulator) at $HOST"
lab_modprobe virtio_pci virtio_net || lab_say "modprobe virtio_pci virtio_net failed"
# find_nic — the first interface backed by a device (the only one before lab_topology).
find_nic() {
    local dev
    for dev in /sys/class/net/*; do
        [ -e "$dev/device" ] && nic=${dev##*/} && return 0
    done
    return 1
}
nic=''
lab_wait 10 find_nic && find_nic
[ -n "$nic" ] || { ls -l /sys/class/net; lab_skip "no NIC (boot with LAB_NET=user: e2e/kmock/smoke does)"; }
lab_must ip link set "$nic" up
lab_must ip addr add 10.0.2.15/24 dev "$nic"
api_up() { api_get /version | grep -q gitVersion; }
lab_wait 20 api_up || lab_skip "no Kubernetes API emulator at $API (run e2e/kmock/smoke)"
lab_say "emulator answers at $API on $nic"

lab_step "topology, web servers, a route to the emulator from each agent's namespace"
lab_topology 2
for rs in $LAB_SERVERS; do lab_must lab_http_server "$rs" 80; done
lab_must ip addr add "$LAB_NET4.1/24" dev br0
lab_must sysctl -qw net.ipv4.ip_forward=1
lab_must lab_modprobe nf_tables nft_chain_nat nft_masq
lab_must nft -f - <<EOF
table ip kmock-smoke {
    chain post {
        type nat hook postrouting priority srcnat;
        ip saddr $LAB_NET4.0/24 ip daddr $HOST oifname "$nic" masquerade
    }
}
EOF
for ns in director $LAB_SERVERS; do lab_must ip -n "$ns" route add "$HOST/32" via "$LAB_NET4.1"; done
lab_check "director reaches the emulator through 10.100.0.1 (masquerade)" \
    lab_ns director sh -c "{ printf 'GET /version HTTP/1.0\\r\\n\\r\\n'; sleep 2; } | nc -w 5 $HOST $PORT | grep -q gitVersion"

cat >"$LAB_RUN/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kmock
  cluster:
    server: $API
users:
- name: kmock
  user: {}
contexts:
- name: kmock
  context: {cluster: kmock, user: kmock}
current-context: kmock
EOF

lab_step "lvs-agent in Kubernetes mode on director-1, rs-1, rs-2 (KUBECONFIG -> $API)"
for ns in director $LAB_SERVERS; do
    node=$(lab_agent_node "$ns")
    lab_spawn "$ns" agent env SSL_CERT_FILE=/lab/scenarios/kmock-smoke.d/ca.pem RUST_LOG="${LAB_AGENT_LOG:-info,kube=debug}" KUBECONFIG="$LAB_RUN/kubeconfig" NODE_NAME="$node" \
        NODE_IP="$(lab_ip4 "$ns")" lvs-agent --registry "$LAB_RUN/agent.$ns.owned.json"
done
start=$(lab_now_ms)
lab_must lab_wait 60 lab_ns director sh -c "ipvsadm -Ln | grep -A3 'TCP  $VIP:80 rr' | grep -c Route | grep -qx 2"
for rs in $LAB_SERVERS; do
    lab_must lab_wait 30 lab_ns "$rs" sh -c "/sbin/ip -4 addr show dev lo | grep -q '$VIP/32'"
done
lab_say "kernel programmed by the agents $(($(lab_now_ms) - start)) ms after they started"
echo "kmock_programmed_ms=$(($(lab_now_ms) - start))"

lab_step "requests from the client to http://$VIP/"
lab_fast_loop client "$VIP" 80 20
lab_check_loop "TCP to $VIP:80" rs1 rs2
lab_arp_probe client "$VIP"
lab_check_eq "MACs answering ARP for $VIP ($(lab_arp_owners))" "$LAB_ARP_MACS" "$LAB_DIRECTOR_MAC"

lab_step "the VirtualServer's status, as lvs-controller wrote it from the agents' LvsNodeConfig statuses"
vs_ready() {
    api_get "$VS_PATH" | tr -d ' \n' >"$LAB_RUN/vs.json"
    grep -q '"ready":"2/2"' "$LAB_RUN/vs.json" &&
        grep -q '"reason":"[A-Za-z]*","status":"True","type":"Ready"\|"type":"Ready"[^}]*"status":"True"\|"status":"True"[^}]*"type":"Ready"' "$LAB_RUN/vs.json"
}
lab_wait 60 vs_ready
lab_check "VirtualServer default/web: ready 2/2 and condition Ready True" vs_ready
# the status object, one condition (or field group) a line
sed -n 's/.*"status":\({"conditions".*\)}$/\1/p' "$LAB_RUN/vs.json" | tr '{' '\n' | sed -n 's/^./    {&/p'
echo
echo "kmock_ready_ms=$(($(lab_now_ms) - start))"

for ns in director $LAB_SERVERS; do lab_check "$ns: agent running" lab_running "$ns" agent; done
lab_finish
