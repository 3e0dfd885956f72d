#!/bin/sh
# dataplane-tun — lvs-agent programs IP-in-IP tunnelling from examples/methods/tunnel.yaml: real servers decapsulate on tunl0, persistence keeps a client on one
# lab-timeout: 300
#
# The real servers' agents load ipip, put the VIP on tunl0 and relax rp_filter; the director
# encapsulates (ipvsadm shows Tunnel). The example's persistence (/24, 600 s) sends every request
# of the one client to the same real server: all answered, all by one.
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip
MANIFESTS="/lab/examples/methods/tunnel.yaml /lab/examples/nodes.yaml /lab/examples/pool.yaml"
VIP=10.100.0.102

lab_step "topology, web servers"
lab_topology 2
for rs in $LAB_SERVERS; do lab_must lab_http_server "$rs" 80; done

lab_step "lvs-agent on every node"
# shellcheck disable=SC2086
lab_agents_once $MANIFESTS
lab_ns director ipvsadm -Ln

lab_check "director: TCP $VIP:80 wrr persistent, tunnelling to both" \
    lab_ns director sh -c "ipvsadm -Ln | grep -A3 'TCP  $VIP:80 wrr persistent 600 mask 255.255.255.0' | grep -c 'Tunnel' | grep -qx 2"
for rs in $LAB_SERVERS; do
    lab_check "$rs: VIP on tunl0" lab_ns "$rs" sh -c "/sbin/ip -4 addr show dev tunl0 | grep -q '$VIP/32'"
    lab_check_eq "$rs: tunl0 rp_filter" "$(lab_ns "$rs" cat /proc/sys/net/ipv4/conf/tunl0/rp_filter)" 0
done

lab_step "traffic"
lab_client_loop client tcp "$VIP" 80 12
lab_check_eq "TCP/IPv4 to $VIP:80: requests without an answer" "$(lab_loop_count FAIL)" 0
answered=$(( $(lab_loop_count rs1) + $(lab_loop_count rs2) ))
lab_check_eq "TCP/IPv4 to $VIP:80: answers" "$answered" 12
lab_check "persistence: every answer from one real server" \
    sh -c "[ $(lab_loop_count rs1) -eq 12 ] || [ $(lab_loop_count rs2) -eq 12 ]"

lab_step "ARP for the VIP"
lab_arp_probe client "$VIP"
lab_check_eq "MACs answering ARP for $VIP ($(lab_arp_owners))" "$LAB_ARP_MACS" "$LAB_DIRECTOR_MAC"

lab_finish
