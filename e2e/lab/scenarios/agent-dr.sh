#!/bin/sh
# agent-dr — lvs-agent in loop mode configures director and real servers for direct routing from examples/; per ARP method (Sysctl, NFTablesARP, Redirect, swapped in the watched folder): balanced, no failures, one MAC for the VIP
# lab-timeout: 240
#
# Three agents (director, rs1, rs2) watch one folder holding examples/nodes.yaml, pool.yaml
# and web.yaml.
# web.yaml starts as examples/virtualserver.yaml (ARP method Sysctl) and is then replaced by the
# same service with NFTablesARP, then Redirect (manifests/dr-*.yaml): the running agents pick up
# each change, undo the previous method and set up the next one. For every method, 20 requests
# from the client are all answered, by both real servers, and exactly one MAC — the director's —
# answers ARP for the VIP. Nothing is configured by hand but the web servers.
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip
DIR=$LAB_RUN/manifests
VIP=$LAB_VIP

lab_step "topology, web servers, the watched folder"
lab_topology 2
for rs in $LAB_SERVERS; do lab_must lab_http_server "$rs" 80; done
lab_must lab_manifest_put "$DIR" nodes.yaml /lab/examples/nodes.yaml
lab_must lab_manifest_put "$DIR" pool.yaml /lab/examples/pool.yaml

for method in Sysctl NFTablesARP Redirect; do
    case $method in
    Sysctl) file=/lab/examples/virtualserver.yaml ;;
    NFTablesARP) file=/lab/manifests/dr-nftables-arp.yaml ;;
    Redirect) file=/lab/manifests/dr-redirect.yaml ;;
    esac
    lab_step "ARP method $method: web.yaml is $file"
    # shellcheck disable=SC2086 # the namespace list
    lab_must lab_agents_put "$DIR" web.yaml "$file" director $LAB_SERVERS
    start=$(lab_now_ms)
    lab_must lab_agent_wait_synced director 1 0
    # shellcheck disable=SC2086 # the namespace list
    lab_must lab_agent_wait_all 0 1 $LAB_SERVERS
    lab_say "$method: all three agents synced $(($(lab_now_ms) - start)) ms after the change"

    lab_check "director: TCP $VIP:80 rr with both real servers, direct routing" \
        lab_ns director sh -c "ipvsadm -Ln | grep -A3 'TCP  $VIP:80 rr' | grep -c 'Route' | grep -qx 2"
    for rs in $LAB_SERVERS; do
        case $method in
        Sysctl)
            lab_check "$rs: VIP on lo" lab_ns "$rs" sh -c "/sbin/ip -4 addr show dev lo | grep -q '$VIP/32'"
            lab_check_eq "$rs: arp_ignore" "$(lab_ns "$rs" cat /proc/sys/net/ipv4/conf/all/arp_ignore)" 1
            lab_check_eq "$rs: arp_announce" "$(lab_ns "$rs" cat /proc/sys/net/ipv4/conf/all/arp_announce)" 2
            ;;
        NFTablesARP)
            lab_check "$rs: VIP on lo" lab_ns "$rs" sh -c "/sbin/ip -4 addr show dev lo | grep -q '$VIP/32'"
            lab_check "$rs: ARP guard for the VIP in table arp lvs-operator" \
                lab_ns "$rs" sh -c "nft list table arp lvs-operator | grep -q 'arp daddr ip $VIP drop'"
            lab_check_eq "$rs: arp_ignore back to the kernel default" \
                "$(lab_ns "$rs" cat /proc/sys/net/ipv4/conf/all/arp_ignore)" 0
            ;;
        Redirect)
            lab_check "$rs: no VIP anywhere" lab_ns "$rs" sh -c "! /sbin/ip addr | grep -q '$VIP/'"
            lab_check "$rs: no ARP table left" lab_ns "$rs" sh -c "! nft list table arp lvs-operator 2>/dev/null"
            lab_check "$rs: REDIRECT of $VIP:80 in table inet lvs-operator" \
                lab_ns "$rs" sh -c "nft list table inet lvs-operator | grep -q 'ip daddr $VIP tcp dport 80 redirect'"
            ;;
        esac
    done

    lab_fast_loop client "$VIP" 80 20
    lab_check_loop "$method: TCP to $VIP:80" rs1 rs2
    lab_arp_probe client "$VIP"
    lab_check_eq "$method: MACs answering ARP for $VIP ($(lab_arp_owners))" "$LAB_ARP_MACS" "$LAB_DIRECTOR_MAC"
done

lab_step "the agents are still running"
for ns in director $LAB_SERVERS; do lab_check "$ns: agent running" lab_running "$ns" agent; done
lab_finish
