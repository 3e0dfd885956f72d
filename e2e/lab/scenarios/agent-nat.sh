#!/bin/sh
# agent-nat — lvs-agent in loop mode configures one-armed NAT from examples/methods/nat.yaml: VIP:80 → real servers' :8080, both answer, no failures, masquerade, one MAC for the VIP
# lab-timeout: 180
#
# Agents on the director and both real servers watch a folder with examples/methods/nat.yaml,
# examples/nodes.yaml and examples/pool.yaml. The director's agent sets ip_forward and IPVS
# conntrack and installs the masquerade; the real servers need nothing (their agents find nothing
# to do). 24 requests are all answered, by both real servers (wlc, weights 1 and 3); the real
# servers' web logs show the director's address, never the client's; only the director answers ARP
# for the VIP.
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip
DIR=$LAB_RUN/manifests
VIP=$LAB_VIP2

lab_step "topology, web servers on :8080, the watched folder"
lab_topology 2
for rs in $LAB_SERVERS; do lab_must lab_http_server "$rs" 8080; done
lab_must lab_manifest_put "$DIR" nodes.yaml /lab/examples/nodes.yaml
lab_must lab_manifest_put "$DIR" pool.yaml /lab/examples/pool.yaml
lab_must lab_manifest_put "$DIR" nat.yaml /lab/examples/methods/nat.yaml

lab_step "agents in loop mode"
for ns in director $LAB_SERVERS; do lab_agent_start "$ns" "$DIR"; done
lab_must lab_agent_wait_synced director 1 0
# shellcheck disable=SC2086 # the namespace list
lab_must lab_agent_wait_all 0 0 $LAB_SERVERS
lab_ns director ipvsadm -Ln

lab_check "director: TCP $VIP:80 wlc masquerading to both :8080" \
    lab_ns director sh -c "ipvsadm -Ln | grep -A3 'TCP  $VIP:80 wlc' | grep -c ':8080 *Masq' | grep -qx 2"
lab_check_eq "director: ip_forward" "$(lab_ns director cat /proc/sys/net/ipv4/ip_forward)" 1
lab_check_eq "director: vs.conntrack" "$(lab_ns director cat /proc/sys/net/ipv4/vs/conntrack)" 1
lab_check "director: masquerade rule in table inet lvs-operator" \
    lab_ns director sh -c "nft list table inet lvs-operator | grep -q masquerade"

lab_step "traffic"
lab_fast_loop client "$VIP" 80 24
lab_check_loop "TCP to $VIP:80 (NAT to :8080)" rs1 rs2
for rs in $LAB_SERVERS; do
    lab_check_ge "$rs: requests from the director's address in its web log" \
        "$(grep -c "$LAB_DIRECTOR_IP" "$LAB_RUN/log/$rs.http-8080.log")" 1
    lab_check_eq "$rs: requests from the client's address in its web log" \
        "$(grep -c "$LAB_CLIENT_IP" "$LAB_RUN/log/$rs.http-8080.log")" 0
done

lab_step "ARP for the VIP"
lab_arp_probe client "$VIP"
lab_check_eq "MACs answering ARP for $VIP ($(lab_arp_owners))" "$LAB_ARP_MACS" "$LAB_DIRECTOR_MAC"

lab_finish
