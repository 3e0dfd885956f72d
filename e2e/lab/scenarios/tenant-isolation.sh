#!/bin/sh
# tenant-isolation — two tenants' AddressPools in standalone mode: team-b's fwmark service on team-a's VIP and its real server outside its backend networks are refused; team-a's clients reach only team-a's real servers, nothing reaches the refused one
# lab-timeout: 120
#
# Agents on the director and both real servers watch a folder with examples/nodes.yaml and
# manifests/tenant-*.yaml: pools team-a (namespace team-a, .100–.109, DirectRouting) and team-b
# (namespaces labelled tenant=team-b — the Namespace object team-b —, .110–.119, DR or NAT,
# backendNetworks 10.100.0.11/32: rs1 only). team-a: DR web on 10.100.0.100:80 → rs1, rs2 (web
# servers on :80 answering rs1, rs2). team-b: steal, a fwmark service on 10.100.0.100 without
# fwmarkPorts (accepted, the director would mark every packet to team-a's VIP and IPVS would
# send them to team-b's backends), and shop, NAT on 10.100.0.110:80 → :8080 of rs1 and rs2 (web
# servers on :8080 answering b-rs1, b-rs2). The director's agent must refuse steal and the pair
# (shop, rs2): its status names them. With real packets: 20 requests to team-a's VIP are all
# answered by rs1 and rs2 (none by a team-b backend); the IPVS table has no fwmark service and
# no destination 10.100.0.12:8080; 20 requests to team-b's VIP are all answered by b-rs1 and
# rs2's :8080 server receives none. Prints name=value lines for the results.
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip
DIR=$LAB_RUN/manifests
VIP_A=$LAB_VIP     # 10.100.0.100, team-a's
VIP_B=10.100.0.110 # team-b's own

# says TEXT PATTERN — TEXT contains PATTERN (grep basic regex).
says() { printf '%s\n' "$1" | grep -q "$2"; }

lab_step "topology, web servers (:80 for team-a, :8080 for team-b), the watched folder"
lab_topology 2
REFUSED=$LAB_RS2_IP # outside team-b's backendNetworks
for rs in $LAB_SERVERS; do
    lab_must lab_http_server "$rs" 80
    lab_must lab_http_server "$rs" 8080 "b-$rs"
done
lab_must lab_manifest_put "$DIR" nodes.yaml /lab/examples/nodes.yaml
lab_must lab_manifest_put "$DIR" pools.yaml /lab/manifests/tenant-pools.yaml
lab_must lab_manifest_put "$DIR" team-a.yaml /lab/manifests/tenant-a.yaml
lab_must lab_manifest_put "$DIR" team-b.yaml /lab/manifests/tenant-b.yaml

lab_step "agents in loop mode"
for ns in director $LAB_SERVERS; do lab_agent_start "$ns" "$DIR"; done
# two services (team-a's web, team-b's shop); each real server holds team-a's VIP
lab_must lab_agent_wait_synced director 2 0
# shellcheck disable=SC2086 # the namespace list
lab_must lab_agent_wait_all 0 1 $LAB_SERVERS
lab_ns director ipvsadm -Ln

lab_step "what the director's agent refused (status problems)"
lab_agent_problems director >"$LAB_RUN/problems.txt"
sed 's/^/    /' "$LAB_RUN/problems.txt"
steal=$(grep '^error: .*VirtualServer team-b/steal: ' "$LAB_RUN/problems.txt" | head -n 1)
refused=$(grep '^error: .*RealServer team-b/shop-2: .*VirtualServer team-b/shop' "$LAB_RUN/problems.txt" | head -n 1)
lab_check "team-b/steal (fwmark on $VIP_A) refused: its VIP is in no pool admitting team-b" \
    says "$steal" "spec.address: $VIP_A is in no AddressPool that admits namespace team-b"
lab_check "pair (team-b/shop, team-b/shop-2) refused: $REFUSED outside team-b's backendNetworks" \
    says "$refused" "spec.address: .*$REFUSED is outside the backendNetworks of AddressPool team-b"
lab_check_eq "errors in the director's status besides those two" \
    "$(grep '^error: ' "$LAB_RUN/problems.txt" | grep -vc 'team-b/steal: \|team-b/shop-2: ')" 0
echo "steal_problem=${steal#*VirtualServer team-b/steal: }"
echo "backend_problem=${refused#*RealServer team-b/shop-2: }"

lab_step "the director's IPVS table"
lab_check_eq "fwmark services" "$(lab_ns director ipvsadm -Ln | grep -c '^FWM')" 0
lab_check "team-a: TCP $VIP_A:80 rr, both real servers, direct routing" \
    lab_ns director sh -c "ipvsadm -Ln | grep -A3 'TCP  $VIP_A:80 rr' | grep -c Route | grep -qx 2"
lab_check "team-b: TCP $VIP_B:80 rr, rs1:8080 masqueraded" \
    lab_ns director sh -c "ipvsadm -Ln | grep -A3 'TCP  $VIP_B:80 rr' | grep -q '$LAB_RS1_IP:8080 *Masq'"
lab_check_eq "destinations $REFUSED:8080" "$(lab_ns director ipvsadm -Ln | grep -c "$REFUSED:8080")" 0
lab_check_eq "packet-mark rules (nft 'mark set')" "$(lab_ns director nft list ruleset | grep -c 'mark set')" 0

lab_step "team-a's clients: 20 requests to $VIP_A:80"
lab_fast_loop client "$VIP_A" 80 20
lab_check_loop "TCP to $VIP_A:80" rs1 rs2
team_a=$(($(lab_loop_count rs1) + $(lab_loop_count rs2)))
lab_check_eq "answers from team-a's real servers (rs1, rs2)" "$team_a" 20
echo "team_a_answers=$team_a"
echo "team_a_failed=$LAB_LOOP_FAILED"

lab_step "team-b's clients: 20 requests to $VIP_B:80 (NAT)"
lab_fast_loop client "$VIP_B" 80 20
lab_check_loop "TCP to $VIP_B:80" b-rs1
lab_check_eq "answers from the refused rs2 (b-rs2)" "$(lab_loop_count b-rs2)" 0
# busybox httpd -v logs each connection with the peer's address: the director's, masqueraded
refused_hits=$(grep -c "$LAB_DIRECTOR_IP" "$LAB_RUN/log/rs2.http-8080.log")
lab_check_eq "connections rs2's :8080 server logged" "$refused_hits" 0
lab_check_ge "connections rs1's :8080 server logged" "$(grep -c "$LAB_DIRECTOR_IP" "$LAB_RUN/log/rs1.http-8080.log")" 20
echo "team_b_answers=$(lab_loop_count b-rs1)"
echo "refused_backend_requests=$refused_hits"

lab_finish
