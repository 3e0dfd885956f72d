#!/bin/sh
# agent-dual-stack — examples/methods/dual-stack.yaml as-is: one VirtualServer with VIPs 10.100.0.107 and fd00:100::107, both programmed on the director and served at once by the real servers of each family, clients with empty neighbour caches, one MAC answering ARP and NDP, both VIPs in the status
# lab-timeout: 180
#
# Agents on the director and both real servers watch a folder with examples/nodes.yaml,
# pool.yaml and methods/dual-stack.yaml. The director gets two IPVS services (one per family)
# and holds the IPv4 VIP on lvs0 and the IPv6 VIP on its uplink; each real server holds both
# VIPs on lo (the example's nodes have both families). A request loop per family runs at the same
# time: 20 requests each, none failed, both real servers answer in each family; the director's
# MAC alone answers ARP for one and NDP for the other.
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip
DIR=$LAB_RUN/manifests
VIP4=10.100.0.107
VIP6=fd00:100::107

lab_step "topology, web servers, the watched folder"
lab_topology 2
for rs in $LAB_SERVERS; do lab_must lab_http_server "$rs" 80; done
lab_must lab_manifest_put "$DIR" nodes.yaml /lab/examples/nodes.yaml
lab_must lab_manifest_put "$DIR" pool.yaml /lab/examples/pool.yaml
lab_must lab_manifest_put "$DIR" dual-stack.yaml /lab/examples/methods/dual-stack.yaml

lab_step "agents in loop mode"
for ns in director $LAB_SERVERS; do lab_agent_start "$ns" "$DIR"; done
lab_must lab_agent_wait_synced director 2 0
# shellcheck disable=SC2086 # the namespace list
lab_must lab_agent_wait_all 0 2 $LAB_SERVERS
lab_ns director ipvsadm -Ln
lab_check "director: TCP $VIP4:80 with both IPv4 real servers" \
    lab_ns director sh -c "ipvsadm -Ln | grep -A3 'TCP  $VIP4:80' | grep -c '10.100.0.1[12]:80 *Route' | grep -qx 2"
lab_check "director: TCP [$VIP6]:80 with both IPv6 real servers" \
    lab_ns director sh -c "ipvsadm -Ln | grep -A3 'TCP  \[$VIP6\]:80' | grep -c 'fd00:100::1[12]\]:80 *Route' | grep -qx 2"
lab_check "director: $VIP4 on lvs0, $VIP6 on eth0" lab_ns director sh -c \
    "/sbin/ip -4 addr show dev lvs0 | grep -q ' $VIP4/32' && /sbin/ip -6 addr show dev eth0 | grep -q ' $VIP6/128'"
for rs in $LAB_SERVERS; do
    lab_check "$rs: both VIPs on lo" lab_ns "$rs" sh -c \
        "/sbin/ip addr show dev lo | grep -q ' $VIP4/32' && /sbin/ip addr show dev lo | grep -q ' $VIP6/128'"
done
lab_check "the director's status reports a service per VIP" sh -c \
    "grep -q '\"address\": \"$VIP4\"' '$LAB_RUN/agent.director.status' &&
     grep -q '\"address\": \"$VIP6\"' '$LAB_RUN/agent.director.status'"

lab_step "both families at once, from a client with an empty neighbour cache"
lab_neigh_flush client
lab_bg_loop_start v6 client tcp "$VIP6" 80
lab_fast_loop client "$VIP4" 80 20
lab_check_loop "IPv4: TCP to $VIP4:80" rs1 rs2
lab_must lab_bg_loop_wait v6 20
lab_bg_loop_stop v6
lab_check_eq "IPv6 (at the same time): requests to [$VIP6]:80 that failed" "$LAB_BG_FAILED" 0
for rs in $LAB_SERVERS; do
    lab_check "IPv6: answers from $rs ($LAB_BG_SUMMARY)" grep -q " $rs\$" "$LAB_RUN/bg.v6.txt"
done

lab_step "who answers for the VIPs"
lab_neigh_probe client "$VIP4"
lab_check_eq "MACs answering ARP for $VIP4 ($(lab_arp_owners))" "$LAB_ARP_MACS" "$LAB_DIRECTOR_MAC"
lab_neigh_probe client "$VIP6"
lab_check_eq "MACs answering NDP for $VIP6 ($(lab_arp_owners))" "$LAB_ARP_MACS" "$LAB_DIRECTOR_MAC"
lab_finish
