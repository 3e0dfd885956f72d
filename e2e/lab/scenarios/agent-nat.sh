#!/bin/sh
# agent-nat — lvs-agent in loop mode configures one-armed NAT from examples/methods/nat.yaml: VIP:80 → real servers' :8080, both answer, no failures, masquerade, one MAC for the VIP
# lab-timeout: 180
#
# Agents on the director and both real servers watch a folder with examples/methods/nat.yaml,
# examples/nodes.yaml and examples/pool.yaml. The director's agent sets ip_forward and IPVS
# conntrack and installs the masquerade; the real servers need nothing (their agents find nothing
# to do). 24 requests are all answered, by both real servers (wlc, weights 1 and 3); the real
# servers' web logs show the director's address, never the client's; only the director answers ARP
# for the VIP. With LAB_FAMILY=6 (agent-nat6) the same example runs over IPv6, its addresses
# turned into the lab's IPv6 ones: IPv6 forwarding on, with accept_ra 2 wherever it was 1 so the
# director keeps taking router advertisements; the client's neighbour cache starts empty.
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip
DIR=$LAB_RUN/manifests
VIP=$LAB_VIP2 SHOWN=$LAB_VIP2 DIRECTOR_IP=$LAB_DIRECTOR_IP CLIENT_IP=$LAB_CLIENT_IP family='s/^//'

lab_step "topology, web servers on :8080, the watched folder"
lab_topology 2
DIRECTOR_IP=$LAB_DIRECTOR_IP CLIENT_IP=$LAB_CLIENT_IP
if [ "${LAB_FAMILY:-4}" = 6 ]; then
    VIP=$LAB_VIP6_2 SHOWN="\\[$LAB_VIP6_2\\]" DIRECTOR_IP=$LAB_DIRECTOR_IP6 CLIENT_IP=$LAB_CLIENT_IP6 family=$LAB_V6
fi
for rs in $LAB_SERVERS; do lab_must lab_http_server "$rs" 8080; done
lab_must lab_manifest_put "$DIR" nodes.yaml /lab/examples/nodes.yaml
lab_must lab_manifest_put "$DIR" pool.yaml /lab/examples/pool.yaml
sed -e "$family" /lab/examples/methods/nat.yaml >"$LAB_RUN/nat.yaml"
lab_must lab_manifest_put "$DIR" nat.yaml "$LAB_RUN/nat.yaml"

lab_step "agents in loop mode"
for ns in director $LAB_SERVERS; do lab_agent_start "$ns" "$DIR"; done
lab_must lab_agent_wait_synced director 1 0
# shellcheck disable=SC2086 # the namespace list
lab_must lab_agent_wait_all 0 0 $LAB_SERVERS
lab_ns director ipvsadm -Ln

lab_check "director: TCP $VIP:80 wlc masquerading to both :8080" \
    lab_ns director sh -c "ipvsadm -Ln | grep -A3 'TCP  $SHOWN:80 wlc' | grep -c ':8080 *Masq' | grep -qx 2"
if [ "${LAB_FAMILY:-4}" = 6 ]; then
    lab_check_eq "director: IPv6 forwarding" "$(lab_ns director cat /proc/sys/net/ipv6/conf/all/forwarding)" 1
    lab_check_eq "director: eth0 still takes router advertisements (accept_ra 2)" \
        "$(lab_ns director cat /proc/sys/net/ipv6/conf/eth0/accept_ra)" 2
else
    lab_check_eq "director: ip_forward" "$(lab_ns director cat /proc/sys/net/ipv4/ip_forward)" 1
fi
lab_check_eq "director: vs.conntrack" "$(lab_ns director cat /proc/sys/net/ipv4/vs/conntrack)" 1
lab_check "director: masquerade rule in table inet lvs-operator" \
    lab_ns director sh -c "nft list table inet lvs-operator | grep -q masquerade"

lab_step "traffic"
lab_neigh_flush client
lab_fast_loop client "$VIP" 80 24
lab_check_loop "TCP to $VIP:80 (NAT to :8080)" rs1 rs2
for rs in $LAB_SERVERS; do
    lab_check_ge "$rs: requests from the director's address in its web log" \
        "$(grep -c "$DIRECTOR_IP" "$LAB_RUN/log/$rs.http-8080.log")" 1
    lab_check_eq "$rs: requests from the client's address in its web log" \
        "$(grep -c "$CLIENT_IP" "$LAB_RUN/log/$rs.http-8080.log")" 0
done

lab_step "ARP (IPv6: NDP) for the VIP"
lab_neigh_probe client "$VIP"
lab_check_eq "MACs answering for $VIP ($(lab_arp_owners))" "$LAB_ARP_MACS" "$LAB_DIRECTOR_MAC"

lab_finish
