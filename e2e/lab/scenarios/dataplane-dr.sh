#!/bin/sh
# dataplane-dr — lvs-agent (lvs-dataplane, no ipvsadm) programs direct routing from examples/: balanced, one MAC for the VIP, re-apply writes nothing
# lab-timeout: 300
#
# The director and both real servers are configured by `lvs-agent --standalone --once` from
# examples/virtualserver.yaml and examples/nodes.yaml — the Sysctl ARP method. ipvsadm only
# watches. A second --once must find nothing to do (zero kernel writes), and a foreign ipvsadm
# service and address created by hand must survive.
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip
MANIFESTS="/lab/examples/virtualserver.yaml /lab/examples/nodes.yaml"

lab_step "topology, web servers, a foreign service and address on the director"
lab_topology 2
for rs in $LAB_SERVERS; do lab_must lab_http_server "$rs" 80; done
lab_must lab_ns director ipvsadm -A -t 192.0.2.50:443 -s wlc
lab_must lab_ns director /sbin/ip addr add 192.0.2.50/32 dev lo

lab_step "lvs-agent on every node"
# shellcheck disable=SC2086 # the manifest list
lab_agents_once $MANIFESTS
lab_ns director ipvsadm -Ln

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

lab_finish
