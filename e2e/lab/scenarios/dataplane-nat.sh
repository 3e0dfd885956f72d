#!/bin/sh
# dataplane-nat — lvs-agent programs one-armed NAT from examples/methods/nat.yaml: port 80 → 8080, masquerade, both real servers answer
# lab-timeout: 300
#
# The agent sets ip_forward and net.ipv4.vs.conntrack and installs the masquerade in its own
# nftables table (the seeds' NAT pitfall: without it the real servers answer the client directly
# and every request fails — see nat-no-masq).
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip
MANIFESTS="/lab/examples/methods/nat.yaml /lab/examples/nodes.yaml /lab/examples/pool.yaml"
VIP=$LAB_VIP2

lab_step "topology, web servers on :8080"
lab_topology 2
for rs in $LAB_SERVERS; do lab_must lab_http_server "$rs" 8080; done

lab_step "lvs-agent on every node"
# shellcheck disable=SC2086
lab_agents_once $MANIFESTS
lab_ns director ipvsadm -Ln
lab_ns director nft list table inet lvs-operator

lab_check "director: TCP $VIP:80 wlc masquerading to :8080" \
    lab_ns director sh -c "ipvsadm -Ln | grep -A3 'TCP  $VIP:80 wlc' | grep -c ':8080 *Masq' | grep -qx 2"
lab_check_eq "director: ip_forward" "$(lab_ns director cat /proc/sys/net/ipv4/ip_forward)" 1
lab_check_eq "director: vs.conntrack" "$(lab_ns director cat /proc/sys/net/ipv4/vs/conntrack)" 1
lab_check "director: masquerade rule in table inet lvs-operator" \
    lab_ns director sh -c "nft list table inet lvs-operator | grep -q masquerade"

lab_step "traffic"
lab_client_loop client tcp "$VIP" 80 24
lab_check_loop "TCP/IPv4 to $VIP:80 (NAT to :8080)" rs1 rs2

lab_step "a second run changes nothing"
# shellcheck disable=SC2086
lab_agents_once $MANIFESTS
lab_check_eq "director: kernel writes on the second run" "$(lab_agent_status_field director writes)" 0

lab_finish
