#!/bin/sh
# dataplane-arp-methods — the three real-server ARP methods (Sysctl, NFTablesARP, Redirect) from examples/: each VIP answered, only the director's MAC in ARP
# lab-timeout: 300
#
# Sysctl: examples/virtualserver.yaml (VIP on lo, arp_ignore/arp_announce).
# NFTablesARP: examples/methods/dns-udp.yaml (VIP on lo, ARP requests for it dropped and the
#   sender address of outgoing ARP rewritten in table arp lvs-operator; no ARP sysctls needed).
# Redirect: examples/methods/fwmark.yaml (no VIP on the real servers; nftables REDIRECT of
#   VIP:80/443; the director marks the VIP's traffic for the fwmark service).
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip
SYSCTL_VIP=$LAB_VIP
NFT_VIP=10.100.0.103
REDIRECT_VIP=10.100.0.104

lab_step "topology; web servers, DNS-port UDP servers bound to the VIP"
lab_topology 2
for rs in $LAB_SERVERS; do
    lab_must lab_http_server "$rs" 80
done

lab_step "lvs-agent on every node, all three methods at once"
lab_agents_once /lab/examples/virtualserver.yaml /lab/examples/methods/dns-udp.yaml \
    /lab/examples/methods/fwmark.yaml /lab/examples/nodes.yaml /lab/examples/pool.yaml
for rs in $LAB_SERVERS; do lab_must lab_udp_server "$rs" 53 "$NFT_VIP"; done
lab_ns director ipvsadm -Ln
lab_ns rs1 nft list ruleset

lab_step "Sysctl method"
lab_client_loop client tcp "$SYSCTL_VIP" 80 10
lab_check_loop "TCP to $SYSCTL_VIP:80" rs1 rs2
lab_arp_probe client "$SYSCTL_VIP"
lab_check_eq "Sysctl: MACs answering ARP for $SYSCTL_VIP ($(lab_arp_owners))" "$LAB_ARP_MACS" "$LAB_DIRECTOR_MAC"

lab_step "NFTablesARP method"
for rs in $LAB_SERVERS; do
    lab_check "$rs: VIP $NFT_VIP on lo" lab_ns "$rs" sh -c "/sbin/ip -4 addr show dev lo | grep -q '$NFT_VIP/32'"
    lab_check "$rs: ARP guard in table arp lvs-operator" \
        lab_ns "$rs" sh -c "nft list table arp lvs-operator | grep -q 'arp daddr ip $NFT_VIP drop'"
done
lab_client_loop client udp "$NFT_VIP" 53 10
lab_check_eq "UDP to $NFT_VIP:53: requests without an answer" "$(lab_loop_count FAIL)" 0
lab_arp_probe client "$NFT_VIP"
lab_check_eq "NFTablesARP: MACs answering ARP for $NFT_VIP ($(lab_arp_owners))" "$LAB_ARP_MACS" "$LAB_DIRECTOR_MAC"

lab_step "Redirect method"
for rs in $LAB_SERVERS; do
    lab_check "$rs: no VIP $REDIRECT_VIP at all" lab_ns "$rs" sh -c "! /sbin/ip addr | grep -q '$REDIRECT_VIP'"
    lab_check "$rs: REDIRECT in table inet lvs-operator" \
        lab_ns "$rs" sh -c "nft list table inet lvs-operator | grep -q 'ip daddr $REDIRECT_VIP tcp dport 80 redirect'"
done
lab_check "director: fwmark 104 service" lab_ns director sh -c "ipvsadm -Ln | grep -q 'FWM  104 lc'"
lab_client_loop client tcp "$REDIRECT_VIP" 80 10
lab_check_eq "TCP to $REDIRECT_VIP:80 (fwmark, Redirect): requests without an answer" "$(lab_loop_count FAIL)" 0
lab_arp_probe client "$REDIRECT_VIP"
lab_check_eq "Redirect: MACs answering ARP for $REDIRECT_VIP ($(lab_arp_owners))" "$LAB_ARP_MACS" "$LAB_DIRECTOR_MAC"

lab_finish
