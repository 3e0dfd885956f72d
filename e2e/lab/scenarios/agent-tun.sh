#!/bin/sh
# agent-tun — lvs-agent in loop mode configures IP-in-IP tunnelling from examples/methods/tunnel.yaml: persistence keeps the client on one real server; without it both answer; no failures, one MAC for the VIP
# lab-timeout: 180
#
# Agents on the director and both real servers watch a folder with examples/methods/tunnel.yaml,
# examples/nodes.yaml and examples/pool.yaml: the real servers decapsulate on tunl0, which holds
# the VIP. The example's persistence (/24, 600 s) sends every request of the lab's one client to
# the same real server; swapping in the same service without persistence
# (manifests/tunnel-rr.yaml) makes both answer. Every request is answered; only the director
# answers ARP for the VIP. With LAB_FAMILY=6 (agent-tun6) the same manifests run over IPv6, their
# addresses turned into the lab's IPv6 ones and the /24 into a /64: IPVS tunnels IPv6 in IPv6 and
# the real servers decapsulate on ip6tnl0; the client's neighbour cache starts empty.
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip
DIR=$LAB_RUN/manifests
VIP=10.100.0.102 SHOWN=10.100.0.102 DEVICE=tunl0 HOST=32 family='s/^//'
if [ "${LAB_FAMILY:-4}" = 6 ]; then
    VIP=fd00:100::102 SHOWN='\[fd00:100::102\]' DEVICE=ip6tnl0 HOST=128
    family="$LAB_V6;s/netmask: 255.255.255.0/prefixLength: 64/"
fi

lab_step "topology, web servers, the watched folder"
lab_topology 2
for rs in $LAB_SERVERS; do lab_must lab_http_server "$rs" 80; done
lab_must lab_manifest_put "$DIR" nodes.yaml /lab/examples/nodes.yaml
lab_must lab_manifest_put "$DIR" pool.yaml /lab/examples/pool.yaml
for file in /lab/examples/methods/tunnel.yaml /lab/manifests/tunnel-rr.yaml; do
    sed -e "$family" "$file" >"$LAB_RUN/$(basename "$file")"
done
lab_must lab_manifest_put "$DIR" tunnel.yaml "$LAB_RUN/tunnel.yaml"

lab_step "agents in loop mode, the example (persistent)"
for ns in director $LAB_SERVERS; do lab_agent_start "$ns" "$DIR"; done
lab_must lab_agent_wait_synced director 1 0
# shellcheck disable=SC2086 # the namespace list
lab_must lab_agent_wait_all 0 1 $LAB_SERVERS
lab_ns director ipvsadm -Ln
lab_check "director: TCP $VIP:80 wrr persistent, tunnelling to both" \
    lab_ns director sh -c "ipvsadm -Ln | grep -A3 'TCP  $SHOWN:80 wrr persistent 600' | grep -c 'Tunnel' | grep -qx 2"
for rs in $LAB_SERVERS; do
    lab_check "$rs: VIP on $DEVICE" lab_ns "$rs" sh -c "/sbin/ip addr show dev $DEVICE | grep -q ' $VIP/$HOST'"
done
lab_neigh_flush client
lab_fast_loop client "$VIP" 80 12
lab_check_eq "persistent: requests without an answer" "$LAB_LOOP_FAILED" 0
lab_check "persistent: every answer from one real server ($LAB_LOOP_SUMMARY)" \
    sh -c "[ $(lab_loop_count rs1) -eq 12 ] || [ $(lab_loop_count rs2) -eq 12 ]"

lab_step "the same service without persistence (manifests/tunnel-rr.yaml)"
# shellcheck disable=SC2086 # the namespace list
lab_must lab_agents_put "$DIR" tunnel.yaml "$LAB_RUN/tunnel-rr.yaml" director $LAB_SERVERS
lab_must lab_agent_wait_synced director 1 0
# shellcheck disable=SC2086
lab_must lab_agent_wait_all 0 1 $LAB_SERVERS
lab_check "director: TCP $VIP:80 wrr, not persistent, tunnelling to both" \
    lab_ns director sh -c "ipvsadm -Ln | grep -A3 'TCP  $SHOWN:80 wrr *\$' | grep -c 'Tunnel' | grep -qx 2"
lab_neigh_flush client
lab_fast_loop client "$VIP" 80 20
lab_check_loop "TCP to $VIP:80 (IP-in-IP)" rs1 rs2

lab_step "ARP (IPv6: NDP) for the VIP"
lab_neigh_probe client "$VIP"
lab_check_eq "MACs answering for $VIP ($(lab_arp_owners))" "$LAB_ARP_MACS" "$LAB_DIRECTOR_MAC"

lab_finish
