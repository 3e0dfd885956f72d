#!/bin/sh
# dataplane-dr — lvs-agent (lvs-dataplane, no ipvsadm) programs direct routing from examples/: balanced, one MAC for the VIP, re-apply writes nothing
# lab-timeout: 300
#
# The director and both real servers are configured by `lvs-agent --standalone --once` from
# examples/virtualserver.yaml, nodes.yaml and pool.yaml — the Sysctl ARP method. ipvsadm only
# watches. The director's gratuitous ARP reaches the client before any traffic (the client
# accepts unsolicited ARP for this check). A second --once must find nothing to do (zero kernel
# writes); a foreign ipvsadm service, address and nftables table created by hand survive it and
# the prune that follows when the manifests no longer give the nodes a role, which removes
# exactly our state and restores the sysctls we changed.
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip
MANIFESTS="/lab/examples/virtualserver.yaml /lab/examples/nodes.yaml /lab/examples/pool.yaml"

lab_step "topology, web servers, a foreign service and address on the director"
lab_topology 2
for rs in $LAB_SERVERS; do lab_must lab_http_server "$rs" 80; done
lab_must lab_ns director ipvsadm -A -t 192.0.2.50:443 -s wlc
lab_must lab_ns director /sbin/ip addr add 192.0.2.50/32 dev lo
for ns in director $LAB_SERVERS; do
    lab_must lab_ns "$ns" nft add table inet filter
    lab_must lab_ns "$ns" nft add chain inet filter input '{ type filter hook input priority 0; policy accept; }'
done
lab_must lab_ns client sysctl -qw net.ipv4.conf.eth0.arp_accept=1

lab_step "lvs-agent on every node"
# shellcheck disable=SC2086 # the manifest list
lab_agents_once $MANIFESTS
lab_ns director ipvsadm -Ln

lab_step "the gratuitous ARP reached the client before any traffic"
lab_check "client's neighbour entry for $LAB_VIP is the director's MAC" \
    lab_ns client sh -c "/sbin/ip neigh show $LAB_VIP | grep -qi '$LAB_DIRECTOR_MAC'"

lab_step "the kernel, as ipvsadm and ip see it"
lab_check "director: TCP $LAB_VIP:80 rr with both real servers, direct routing" \
    lab_ns director sh -c "ipvsadm -Ln | grep -A3 'TCP  $LAB_VIP:80 rr' | grep -c 'Route' | grep -qx 2"
lab_check "director: VIP on lvs0" lab_ns director sh -c "/sbin/ip -4 addr show dev lvs0 | grep -q '$LAB_VIP/32'"
for rs in $LAB_SERVERS; do
    lab_check "$rs: VIP on lo" lab_ns "$rs" sh -c "/sbin/ip -4 addr show dev lo | grep -q '$LAB_VIP/32'"
    lab_check_eq "$rs: arp_ignore" "$(lab_ns "$rs" cat /proc/sys/net/ipv4/conf/all/arp_ignore)" 1
    lab_check_eq "$rs: arp_announce" "$(lab_ns "$rs" cat /proc/sys/net/ipv4/conf/all/arp_announce)" 2
done

lab_step "traffic"
lab_client_loop client tcp "$LAB_VIP" 80 20
lab_check_loop "TCP/IPv4 to $LAB_VIP:80" rs1 rs2

lab_step "ARP for the VIP"
lab_arp_probe client "$LAB_VIP"
lab_check_eq "MACs answering ARP for $LAB_VIP ($(lab_arp_owners))" "$LAB_ARP_MACS" "$LAB_DIRECTOR_MAC"

lab_step "a second run changes nothing"
# shellcheck disable=SC2086
lab_agents_once $MANIFESTS
for ns in director $LAB_SERVERS; do
    lab_check_eq "$ns: operations on the second run" "$(lab_agent_status_field "$ns" operations)" 0
    lab_check_eq "$ns: kernel writes on the second run" "$(lab_agent_status_field "$ns" writes)" 0
done
lab_check "the foreign ipvsadm service survived" lab_ns director sh -c "ipvsadm -Ln | grep -q '192.0.2.50:443 wlc'"
lab_check "the foreign address survived" lab_ns director sh -c "/sbin/ip addr show dev lo | grep -q 192.0.2.50/32"

lab_step "prune: the nodes lose their role, our state goes, nothing else does"
lab_agents_once /lab/examples/nodes.yaml /lab/examples/pool.yaml
lab_check "director: our service is gone" lab_ns director sh -c "! ipvsadm -Ln | grep -q '$LAB_VIP:80'"
lab_check "director: lvs0 is gone" lab_ns director sh -c "! /sbin/ip link show lvs0 2>/dev/null"
lab_check "director: the foreign service survived the prune" lab_ns director sh -c "ipvsadm -Ln | grep -q '192.0.2.50:443 wlc'"
lab_check "director: the foreign address survived the prune" lab_ns director sh -c "/sbin/ip addr show dev lo | grep -q 192.0.2.50/32"
for rs in $LAB_SERVERS; do
    lab_check "$rs: VIP removed from lo" lab_ns "$rs" sh -c "! /sbin/ip addr show dev lo | grep -q '$LAB_VIP/32'"
    lab_check_eq "$rs: arp_ignore restored" "$(lab_ns "$rs" cat /proc/sys/net/ipv4/conf/all/arp_ignore)" 0
    lab_check_eq "$rs: arp_announce restored" "$(lab_ns "$rs" cat /proc/sys/net/ipv4/conf/all/arp_announce)" 0
done
for ns in director $LAB_SERVERS; do
    lab_check "$ns: the foreign nftables table survived" lab_ns "$ns" nft list table inet filter
done

lab_finish
