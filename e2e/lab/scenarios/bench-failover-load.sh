#!/bin/sh
# bench-failover-load — failover under load: 1,000 services with failover on two directors (10 VIPs), the active director's namespace kept busy by two busy loops for 5 minutes → false_failovers=0 (checked); then the active one is cut off → gap_ms (a UDP echo every 20 ms) and when the last VIP moved
# lab-timeout: 600
#
# Directors director (director-1, preferred, active) and director2, real servers rs1 and rs2,
# default failover settings (heartbeats every 200 ms, dead after 3), agents in loop mode with
# the default 30 s resync: manifests/ha.yaml (web :80, stream :9000 on 10.100.0.100), a UDP echo
# service on .100:9999 (lab_ha_udp_servers), and 1,000 generated direct-routing VirtualServers on
# 10 VIPs (10.100.0.100–.109, 100 ports each from 10000, namespace lab as ha.yaml — a VIP belongs
# to one namespace — rr, health checks off, the two shared
# RealServers, the same highAvailability block as ha.yaml): 1,003 services, 10 failover VIPs.
# The real servers' agents read only ha.yaml (the client uses only .100). The pool allows 100
# addresses, and each VIP is an election of its own with its probes: the VIPs are 10, not 1,000
# (the services are 1,000).
#
# Load: two `while :; do :; done` shell loops in director's namespace (the VM has one CPU: every
# process in it — both agents included — competes with them; each agent's 1,003-service resync
# every 30 s adds its own bursts) for LOAD_SECONDS (300). Meanwhile director2's addresses are
# sampled every 200 ms. false_failovers counts "taking over the VIP" in both agents' logs during
# the load plus samples in which director2 held any VIP; it must be 0. Also printed:
# stalls_director2= (its failover task woke a heartbeat interval late), inconclusive_probes=
# (probes of a silent holder that took too long to be believed).
#
# Then, with the load still running, director is cut off (eth0 down, agent killed): gap_ms is
# the silence of the UDP echo across the cut (as in ha-failover), all_vips_ms when director2
# held all 10 VIPs (ms after the cut, sampled every 20 ms).
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip
SERVICES=1000
VIPS=10
LOAD_SECONDS=300

# takeovers NS — "taking over the VIP" lines in NS's agent log.
takeovers() { grep -c 'taking over the VIP' "$LAB_RUN/log/$1.agent.log"; }

# vips_held NS — how many of the bench's VIPs NS has on lvs0.
vips_held() { /sbin/ip -n "$1" -4 addr show dev lvs0 2>/dev/null | grep -c 'inet 10\.100\.0\.10[0-9]/'; }

# since — seconds since the scenario started, for progress lines.
since() { echo "$((($(lab_uptime_ms) - BEGIN) / 1000)) s"; }
BEGIN=$(lab_uptime_ms)

lab_step "two directors, two real servers; 1,000 services with failover on $VIPS VIPs"
# As lab_ha_setup, but the directors also read a second folder with the 1,000 services (the real
# servers' agents need only the .100 services the client uses), all there before they start
# (the UDP echo service too: every pass over 1,003 services takes seconds).
lab_topology 2 2
for ns in rs1 rs2; do
    lab_must lab_http_server "$ns" 80
    lab_ha_stream_server "$ns"
done
lab_ha_key
LAB_AGENT_ARGS="--failover-key-file $LAB_HA_KEY"
export LAB_AGENT_ARGS
LAB_HA_DIR=$LAB_RUN/manifests
BENCH_DIR=$LAB_RUN/bench
mkdir -p "$LAB_HA_DIR" "$BENCH_DIR"
lab_must lab_manifest_put "$LAB_HA_DIR" nodes.yaml /lab/manifests/ha-nodes.yaml
lab_must lab_manifest_put "$LAB_HA_DIR" pool.yaml /lab/examples/pool.yaml
lab_must lab_manifest_put "$LAB_HA_DIR" ha.yaml /lab/manifests/ha.yaml
lab_ha_udp_servers
lab_must lab_manifest_put "$LAB_HA_DIR" udp-probe.yaml "$LAB_RUN/udp-probe.yaml"
awk -v n="$SERVICES" -v vips="$VIPS" 'BEGIN {
    for (i = 0; i < n; i++) {
        printf "apiVersion: lvs.operator.io/v1alpha1\nkind: VirtualServer\nmetadata:\n  name: bench-%d\n  namespace: lab\n", i
        printf "spec:\n  address: 10.100.0.%d\n  port: %d\n  scheduler: rr\n", 100 + i % vips, 10000 + int(i / vips)
        printf "  directors:\n    interface: eth0\n    highAvailability:\n      priority: [director-1, director-2]\n"
        printf "      preempt: false\n      preemptDelaySeconds: 2\n      connectionSync:\n        enabled: true\n        syncId: 7\n        failbackSyncSeconds: 3\n"
        printf "  realServers:\n    selector:\n      matchLabels:\n        app: bench\n  healthCheck:\n    type: None\n---\n"
    }
    for (r = 1; r <= 2; r++)
        printf "apiVersion: lvs.operator.io/v1alpha1\nkind: RealServer\nmetadata:\n  name: bench-rs%d\n  namespace: lab\n  labels:\n    app: bench\nspec:\n  address: 10.100.0.%d\n---\n", r, 10 + r
}' >"$LAB_RUN/bench.yaml"
lab_must lab_manifest_put "$BENCH_DIR" bench.yaml "$LAB_RUN/bench.yaml"
total=$((SERVICES + 3))
lab_agent_start director "$LAB_HA_DIR" "$BENCH_DIR"
for ns in rs1 rs2; do lab_agent_start "$ns" "$LAB_HA_DIR"; done
lab_must lab_agent_wait_synced director "$total" 0 150
lab_say "director synced $total services ($(since))"
lab_must lab_wait 30 sh -c "[ \$(/sbin/ip -n director -4 addr show dev lvs0 | grep -c 'inet 10\.100\.0\.10[0-9]/') -eq $VIPS ]"
lab_agent_start director2 "$LAB_HA_DIR" "$BENCH_DIR"
lab_must lab_agent_wait_synced director2 "$total" 0 150
lab_must lab_agent_wait_all 0 1 rs1 rs2
lab_say "director2 synced ($(since))"
lab_check_eq "VIPs on director" "$(vips_held director)" "$VIPS"
lab_check_eq "VIPs on director2" "$(vips_held director2)" 0
lab_say "director: $(lab_ns director ipvsadm -Ln | grep -c '^TCP') IPVS services"

lab_step "two busy loops in director's namespace for ${LOAD_SECONDS} s"
before1=$(takeovers director)
before2=$(takeovers director2)
lab_spawn director load1 sh -c 'while :; do :; done'
lab_spawn director load2 sh -c 'while :; do :; done'
start=$(lab_uptime_ms)
samples=0
held=0
while [ $(($(lab_uptime_ms) - start)) -lt $((LOAD_SECONDS * 1000)) ]; do
    samples=$((samples + 1))
    [ "$(vips_held director2)" -eq 0 ] || held=$((held + 1))
    sleep 0.2
done
takeovers=$(($(takeovers director) - before1 + $(takeovers director2) - before2))
false_failovers=$((takeovers + held))
stalls=$(grep -c 'did not run for a while' "$LAB_RUN/log/director2.agent.log")
inconclusive=$(cat "$LAB_RUN/log/director.agent.log" "$LAB_RUN/log/director2.agent.log" | grep -c 'took too long to be sure')
held_probes=$(grep -c 'the holder fell silent' "$LAB_RUN/log/director2.agent.log")
lab_say "($(since)) load: $samples samples of director2's addresses, $held with a VIP; takeovers $takeovers;" \
    "director2: $stalls stall(s), $held_probes silent-holder probe(s), $inconclusive inconclusive"
lab_check_eq "false failovers under load" "$false_failovers" 0
lab_check_eq "VIPs on director after the load" "$(vips_held director)" "$VIPS"

lab_step "director is cut off (the load goes on)"
lab_ha_timeline_start
lab_ha_udp_start
sleep 2
lab_ha_cut director
cut=$LAB_HA_CUT
all=''
while [ $(($(lab_uptime_ms) - cut)) -lt 20000 ]; do
    if [ "$(vips_held director2)" -eq "$VIPS" ]; then
        all=$(($(lab_uptime_ms) - cut))
        break
    fi
    sleep 0.02
done
lab_check "director2 holds all $VIPS VIPs" [ -n "$all" ]
sleep 2
lab_ha_udp_stop "$cut"
lab_check "UDP echoes after the cut" [ "$LAB_HA_UDP_GAP" != never ]
lab_kill director load1
lab_kill director load2
decided=$(grep 'taking over the VIP' "$LAB_RUN/log/director2.agent.log" | head -n 1 | lab_ha_day_ms)
lab_say "director2: first decision +$(lab_ha_since_cut "$decided") ms after the cut; all $VIPS VIPs +${all:-never} ms"
echo "services=$total"
echo "failover_vips=$VIPS"
echo "load_seconds=$LOAD_SECONDS"
echo "stalls_director2=$stalls"
echo "silent_holder_probes=$held_probes"
echo "inconclusive_probes=$inconclusive"
echo "false_failovers=$false_failovers"
echo "cut_to_decision_ms=$(lab_ha_since_cut "$decided")"
echo "all_vips_ms=${all:-never}"
echo "cut_to_echo_ms=$LAB_HA_UDP_FIRST"
echo "gap_ms=$LAB_HA_UDP_GAP"
lab_finish
