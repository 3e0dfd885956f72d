#!/bin/sh
# kmock-smoke — full stack against a Kubernetes API emulator on the host (e2e/kmock/smoke): lvs-agent in Kubernetes mode on director, rs1, rs2 programs what lvs-controller wrote; requests answered by both real servers; the VirtualServer turns Ready 2/2
# lab-timeout: 240
# lab-needs-host: e2e/kmock/smoke
#
# kmock-apply: examples/pool.yaml examples/nodes.yaml examples/virtualserver.yaml
# kmock-virtualserver: default/web
#
# Runs only through e2e/kmock/smoke, which starts the host side (the emulator on the host's
# 127.0.0.1:18473 with the CRDs and the kmock-apply manifests applied, and lvs-controller
# running against it) and boots the VM with LAB_NET=user; without the emulator it SKIPs. The
# network set-up is in lib/kmock.sh. The agents watch their own LvsNodeConfig and write its
# status; the controller on the host turns that into the VirtualServer's status.
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip
VIP=$LAB_VIP
VS_PATH=/apis/lvs.operator.io/v1alpha1/namespaces/default/virtualservers/web

lab_step "the user-network NIC: 10.0.2.15, the host (emulator) at $LAB_KMOCK_HOST"
lab_kmock_nic

lab_step "topology, web servers, a route to the emulator from each agent's namespace"
lab_topology 2
for rs in $LAB_SERVERS; do lab_must lab_http_server "$rs" 80; done
# shellcheck disable=SC2086 # a list of namespaces
lab_kmock_routes director $LAB_SERVERS
lab_check "director reaches the emulator through 10.100.0.1 (masquerade)" lab_kmock_reaches director

lab_step "lvs-agent in Kubernetes mode on director-1, rs-1, rs-2 (KUBECONFIG -> $LAB_KMOCK_API)"
for ns in director $LAB_SERVERS; do
    lab_kmock_agent "$ns"
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
    lab_kmock_get "$VS_PATH" | tr -d ' \n' >"$LAB_RUN/vs.json"
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
