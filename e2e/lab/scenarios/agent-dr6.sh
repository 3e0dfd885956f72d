#!/bin/sh
# agent-dr6 — IPv6 direct routing through lvs-agent: per ARP method (Sysctl, NFTablesARP, Redirect) a client with an empty neighbour cache is served by both real servers and only the director answers NDP; then examples/methods/ipv6.yaml as-is
# lab-timeout: 300
#
# Three agents (director, rs1, rs2) watch one folder holding examples/nodes.yaml, pool.yaml and
# web6.yaml (manifests/web6.yaml: VIP fd00:100::100 port 80, real servers fd00:100::11 and ::12),
# whose arpMethod is switched Sysctl → NFTablesARP → Redirect. Linux answers neighbour
# solicitation only for addresses on the receiving interface, so the director must make its
# uplink answer for the VIP, and a real server must never answer for it. For every method the
# client's neighbour cache is flushed, 20 requests are all answered, by both real servers, and
# ndisc6 sees exactly one MAC — the director's — answer for the VIP.
# Then web6.yaml is replaced by examples/methods/ipv6.yaml unchanged (namespace methods, port
# 443, mh with per-/64 persistence, HTTPS health checks, vipDevice Dummy, v6-2 Draining): every
# request is answered by rs1 over TLS, none by the draining rs2, and again one MAC answers NDP.
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip
DIR=$LAB_RUN/manifests
VIP=$LAB_VIP6

lab_step "topology, web servers, the watched folder"
lab_topology 2
for rs in $LAB_SERVERS; do
    lab_must lab_http_server "$rs" 80
    lab_must lab_tls_server "$rs" 443
done
lab_must lab_manifest_put "$DIR" nodes.yaml /lab/examples/nodes.yaml
lab_must lab_manifest_put "$DIR" pool.yaml /lab/examples/pool.yaml

# round NAME — the client's cache emptied, 20 requests, then an NDP probe of the VIP.
round() {
    lab_neigh_flush client
    if [ "$2" = https ]; then lab_tls_loop client "$VIP" 443 20; else lab_fast_loop client "$VIP" 80 20; fi
    lab_ndp_probe client "$VIP"
    lab_check_eq "$1: MACs answering NDP for $VIP ($(lab_arp_owners))" "$LAB_ARP_MACS" "$LAB_DIRECTOR_MAC"
}

for method in Sysctl NFTablesARP Redirect; do
    lab_step "ARP method $method"
    sed "s/arpMethod: Sysctl/arpMethod: $method/" /lab/manifests/web6.yaml >"$LAB_RUN/web6-$method.yaml"
    # shellcheck disable=SC2086 # the namespace list
    lab_must lab_agents_put "$DIR" web6.yaml "$LAB_RUN/web6-$method.yaml" director $LAB_SERVERS
    lab_must lab_agent_wait_synced director 1 0
    # shellcheck disable=SC2086 # the namespace list
    lab_must lab_agent_wait_all 0 1 $LAB_SERVERS

    lab_check "director: TCP [$VIP]:80 rr with both real servers, direct routing" \
        lab_ns director sh -c "ipvsadm -Ln | grep -A3 'TCP  \[$VIP\]:80 rr' | grep -c 'Route' | grep -qx 2"
    lab_check "director: the VIP on its uplink eth0, deprecated (never a source address)" \
        lab_ns director sh -c "/sbin/ip -6 addr show dev eth0 | grep '$VIP/128' | grep -q deprecated"
    for rs in $LAB_SERVERS; do
        case $method in
        Sysctl)
            # IPv6 needs no sysctl: Linux answers solicitations only for addresses on the
            # interface they arrive on, never for one on lo.
            lab_check "$rs: VIP on lo" lab_ns "$rs" sh -c "/sbin/ip -6 addr show dev lo | grep -q '$VIP/128'"
            ;;
        NFTablesARP)
            lab_check "$rs: VIP on lo" lab_ns "$rs" sh -c "/sbin/ip -6 addr show dev lo | grep -q '$VIP/128'"
            # nft 1.0.6 has no name for the solicitation's target: raw transport-header bits.
            lab_check "$rs: neighbour solicitations for the VIP dropped in table inet lvs-operator" \
                lab_ns "$rs" sh -c "nft list chain inet lvs-operator neighbours |
                    grep -q 'nd-neighbor-solicit @th,64,128 0xfd000100000000000000000000000100 drop'"
            ;;
        Redirect)
            lab_check "$rs: no VIP anywhere" lab_ns "$rs" sh -c "! /sbin/ip addr | grep -q '$VIP/'"
            lab_check "$rs: REDIRECT of [$VIP]:80 in table inet lvs-operator" \
                lab_ns "$rs" sh -c "nft list table inet lvs-operator | grep -q 'ip6 daddr $VIP tcp dport 80 redirect'"
            ;;
        esac
    done
    round "$method"
    lab_check_loop "$method: TCP to [$VIP]:80" rs1 rs2
done

lab_step "examples/methods/ipv6.yaml as-is"
# shellcheck disable=SC2086 # the namespace list
lab_must lab_agents_put "$DIR" web6.yaml /lab/examples/methods/ipv6.yaml director $LAB_SERVERS
lab_must lab_agent_wait_synced director 1 0
# shellcheck disable=SC2086 # the namespace list
lab_must lab_agent_wait_all 0 1 $LAB_SERVERS
lab_check "director: TCP [$VIP]:443 mh, persistent, rs2 at weight 0 (Draining)" \
    lab_ns director sh -c "ipvsadm -Ln | grep -A3 'TCP  \[$VIP\]:443 mh' | grep -q '\[fd00:100::12\]:443 *Route *0 '"
lab_check "rs1, rs2: VIP on lvs0 (vipDevice Dummy)" \
    sh -c "/sbin/ip -n rs1 -6 addr show dev lvs0 | grep -q '$VIP/128' && /sbin/ip -n rs2 -6 addr show dev lvs0 | grep -q '$VIP/128'"
# The director's HTTPS check of v6-1 (over IPv6, Host www.example.internal, the lab's X.509 v1
# self-signed certificate) must have passed: an unknown verdict would let the round pass anyway.
lab_check "director: v6-1 healthy by its HTTPS check" lab_wait 30 sh -c \
    "grep -A2 '\"realServer\": \"methods/v6-1\"' '$LAB_RUN/agent.director.status' | grep -q '\"healthy\": true'"
round "ipv6.yaml" https
lab_check_loop "ipv6.yaml: HTTPS to [$VIP]:443" rs1
lab_check_eq "ipv6.yaml: answers from the draining rs2" "$(lab_loop_count rs2)" 0

lab_step "the agents are still running"
for ns in director $LAB_SERVERS; do lab_check "$ns: agent running" lab_running "$ns" agent; done
lab_finish
