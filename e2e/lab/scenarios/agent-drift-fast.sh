#!/bin/sh
# agent-drift-fast — at default settings (resync 30 s) the agent repairs drift as it happens: the VIP deleted by hand from lvs0 answers again within 1 s, an `ipvsadm -C` within 2 s, under a request every 20 ms; a resync with nothing changed writes nothing
# lab-timeout: 240
#
# Agents on the director and both real servers run examples/virtualserver.yaml with their
# default settings (`--resync-seconds 30`), so a repair within seconds can only come from the
# kernel's change notifications (addresses) and the once-a-second IPVS check, not from the
# resync timer. A client sends an HTTP request to the VIP every 20 ms (lab_ha_client_start)
# while, by hand on the director, the VIP is deleted from lvs0 and later the IPVS table is
# flushed. Prints vip_drift_gap_ms and ipvs_drift_gap_ms: the longest time without an answer
# around each (targets: under 1000 and 2000 ms; measured before: 31 s and 25 s). Then, with
# nothing changed, the agent's next resync must plan nothing and write nothing, and the quiet
# time must not be filled with passes.
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip
DIR=$LAB_RUN/manifests
VIP=$LAB_VIP
LAB_HA_VIP=$VIP
VIP_LIMIT_MS=1000
IPVS_LIMIT_MS=2000
AGENT_LOG=$LAB_RUN/log/director.agent.log

lab_step "topology, web servers, agents at default settings"
lab_topology 2
for rs in $LAB_SERVERS; do lab_must lab_http_server "$rs" 80; done
lab_must lab_manifest_put "$DIR" nodes.yaml /lab/examples/nodes.yaml
lab_must lab_manifest_put "$DIR" pool.yaml /lab/examples/pool.yaml
lab_must lab_manifest_put "$DIR" web.yaml /lab/examples/virtualserver.yaml
for ns in director $LAB_SERVERS; do lab_agent_start "$ns" "$DIR"; done
lab_must lab_agent_wait_synced director 1 0
# shellcheck disable=SC2086 # the namespace list
lab_must lab_agent_wait_all 0 1 $LAB_SERVERS
lab_fast_loop client "$VIP" 80 10
lab_check_loop "before: TCP to $VIP:80" rs1 rs2
drift_before=$(lab_agent_status_field director driftRepairs)

# ipvs_whole — the director's service has both real servers again.
ipvs_whole() { lab_ns director sh -c "ipvsadm -Ln | grep -A3 'TCP  $VIP:80 rr' | grep -c 'Route' | grep -qx 2"; }

# drift NAME COMMAND... — the client loop NAME runs 2 s, COMMAND sabotages the director, the
# loop runs on until 2 s after the repair (limit 10 s); sets GAP (lab_ha_gap's LAB_HA_GAP).
drift() {
    local name=$1 cut
    shift
    lab_ha_client_start "$name"
    sleep 2
    cut=$(lab_uptime_ms)
    lab_must lab_ns director "$@"
    lab_wait 10 lab_ha_holds director
    lab_wait 10 ipvs_whole
    sleep 2
    lab_ha_client_stop "$name"
    lab_ha_gap "$name" "$cut"
    GAP=$LAB_HA_GAP
}

lab_step "by hand: ip addr del $VIP/32 dev lvs0 on the director"
drift vip /sbin/ip addr del "$VIP/32" dev lvs0
echo "vip_drift_gap_ms=$GAP"
lab_check "the VIP is back on lvs0" lab_ha_holds director
lab_check "answers within ${VIP_LIMIT_MS} ms (longest gap: $GAP ms)" \
    test "$GAP" != never -a "${GAP%%[!0-9]*}" -lt "$VIP_LIMIT_MS"

lab_step "by hand: ipvsadm -C on the director"
drift ipvs ipvsadm -C
echo "ipvs_drift_gap_ms=$GAP"
lab_check "the service is back with both real servers" ipvs_whole
lab_check "answers within ${IPVS_LIMIT_MS} ms (longest gap: $GAP ms)" \
    test "$GAP" != never -a "${GAP%%[!0-9]*}" -lt "$IPVS_LIMIT_MS"
lab_ns director ipvsadm -Ln
lab_say "director's agent on the repairs:"
grep -E 'drift|differ|reconciled' "$AGENT_LOG" | tail -n 8 | sed 's/^/    /'
lab_check_ge "director: driftRepairs (before: $drift_before)" \
    "$(lab_agent_status_field director driftRepairs)" $((drift_before + 2))

lab_step "nothing changed: the next resync (within 30 s) plans and writes nothing"
passes_before=$(grep -c 'reconciled' "$AGENT_LOG")
lab_agent_mark director
lab_check "a pass within 35 s (the resync timer)" lab_wait 35 sh -c \
    "[ \"\$(stat -c %y '$LAB_RUN/agent.director.status')\" != \"\$(cat '$LAB_RUN/agent.director.mark')\" ]"
sleep 1
passes=$(($(grep -c 'reconciled' "$AGENT_LOG") - passes_before))
lab_say "director: $passes pass(es) in the quiet time; last status: operations $(lab_agent_status_field director operations), writes $(lab_agent_status_field director writes)"
lab_check_eq "director: operations of the resync" "$(lab_agent_status_field director operations)" 0
lab_check_eq "director: kernel writes of the resync" "$(lab_agent_status_field director writes)" 0
lab_check "director: no more than 2 passes while nothing changed ($passes)" test "$passes" -le 2
lab_check_eq "rs2: driftRepairs (nothing touched there)" "$(lab_agent_status_field rs2 driftRepairs)" 0

lab_step "traffic after the repairs"
lab_fast_loop client "$VIP" 80 10
lab_check_loop "after: TCP to $VIP:80" rs1 rs2

lab_finish
