#!/bin/sh
# agent-drift — lvs-agent in loop mode with --resync-seconds 5 repairs hand-made damage (ipvsadm -C, VIP deleted on the director and on rs1) within one resync period; driftRepairs counts it
# lab-timeout: 180
#
# Agents on the director and both real servers run examples/virtualserver.yaml with a 5 s
# resync. By hand: `ipvsadm -C` and `ip addr del VIP` on the director, and the VIP deleted from
# rs1's lo. The next resync (≤ 5 s) must restore both real servers in the service, the VIP on
# lvs0 and on rs1's lo (checked every 0.1 s; limit 5 s + 2 s slack), and the agents' status must
# count a drift repair. Prints director_repair_ms and rs1_repair_ms.
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip
DIR=$LAB_RUN/manifests
VIP=$LAB_VIP
RESYNC=5
LIMIT_MS=$((RESYNC * 1000 + 2000))

lab_step "topology, web servers, agents with --resync-seconds $RESYNC"
lab_topology 2
for rs in $LAB_SERVERS; do lab_must lab_http_server "$rs" 80; done
lab_must lab_manifest_put "$DIR" nodes.yaml /lab/examples/nodes.yaml
lab_must lab_manifest_put "$DIR" pool.yaml /lab/examples/pool.yaml
lab_must lab_manifest_put "$DIR" web.yaml /lab/examples/virtualserver.yaml
# shellcheck disable=SC2034 # read by lab_agent_start
LAB_AGENT_ARGS="--resync-seconds $RESYNC"
for ns in director $LAB_SERVERS; do lab_agent_start "$ns" "$DIR"; done
lab_must lab_agent_wait_synced director 1 0
# shellcheck disable=SC2086 # the namespace list
lab_must lab_agent_wait_all 0 1 $LAB_SERVERS
lab_fast_loop client "$VIP" 80 10
lab_check_loop "before: TCP to $VIP:80" rs1 rs2
director_before=$(lab_agent_status_field director driftRepairs)
rs1_before=$(lab_agent_status_field rs1 driftRepairs)
lab_say "driftRepairs before: director $director_before, rs1 $rs1_before"

# director_whole / rs1_whole — true when the state is back.
director_whole() {
    lab_ns director sh -c "ipvsadm -Ln | grep -A3 'TCP  $VIP:80 rr' | grep -c 'Route' | grep -qx 2" &&
        lab_ns director sh -c "/sbin/ip -4 addr show dev lvs0 | grep -q '$VIP/32'"
}
rs1_whole() { lab_ns rs1 sh -c "/sbin/ip -4 addr show dev lo | grep -q '$VIP/32'"; }

lab_step "sabotage by hand: ipvsadm -C, ip addr del $VIP on the director and on rs1"
sabotage=$(lab_now_ms)
lab_must lab_ns director ipvsadm -C
lab_must lab_ns director /sbin/ip addr del "$VIP/32" dev lvs0
lab_must lab_ns rs1 /sbin/ip addr del "$VIP/32" dev lo
director_ms='' rs1_ms=''
while :; do
    now=$(lab_now_ms)
    [ -z "$director_ms" ] && director_whole && director_ms=$((now - sabotage))
    [ -z "$rs1_ms" ] && rs1_whole && rs1_ms=$((now - sabotage))
    [ -n "$director_ms" ] && [ -n "$rs1_ms" ] && break
    [ $((now - sabotage)) -gt $((LIMIT_MS + 3000)) ] && break
    sleep 0.1
done
echo "director_repair_ms=${director_ms:-none}"
echo "rs1_repair_ms=${rs1_ms:-none}"
lab_ns director ipvsadm -Ln
lab_check "director: service and VIP repaired within ${LIMIT_MS} ms (took ${director_ms:-never} ms)" \
    test -n "$director_ms" -a "${director_ms:-0}" -le "$LIMIT_MS"
lab_check "rs1: VIP repaired within ${LIMIT_MS} ms (took ${rs1_ms:-never} ms)" \
    test -n "$rs1_ms" -a "${rs1_ms:-0}" -le "$LIMIT_MS"

lab_step "the status counts the repairs"
lab_wait 3 sh -c "[ \"\$(sed -n 's/.*\"driftRepairs\": *\([0-9]*\).*/\1/p' '$LAB_RUN/agent.director.status')\" -gt $director_before ]"
lab_wait 3 sh -c "[ \"\$(sed -n 's/.*\"driftRepairs\": *\([0-9]*\).*/\1/p' '$LAB_RUN/agent.rs1.status')\" -gt $rs1_before ]"
lab_check_ge "director: driftRepairs after (before: $director_before)" \
    "$(lab_agent_status_field director driftRepairs)" $((director_before + 1))
lab_check_ge "rs1: driftRepairs after (before: $rs1_before)" \
    "$(lab_agent_status_field rs1 driftRepairs)" $((rs1_before + 1))
lab_check_eq "rs2: driftRepairs (nothing touched there)" "$(lab_agent_status_field rs2 driftRepairs)" 0

lab_step "traffic after the repair"
lab_fast_loop client "$VIP" 80 10
lab_check_loop "after: TCP to $VIP:80" rs1 rs2

lab_finish
