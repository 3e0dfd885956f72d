#!/bin/sh
# bench-agent-memory — lvs-agent in loop mode with 1,000 services (one VIP, ports 10000–10999, two real servers each, no health checks): time to first sync, services programmed; last line rss_kib=N (target < 40 MiB)
# lab-timeout: 300
#
# Generates one manifest with 1,000 direct-routing VirtualServers on 10.100.0.100, ports
# 10000–10999, each selecting the same two RealServers (rs1, rs2; health checks type None, so
# nothing is probed), plus examples/nodes.yaml and pool.yaml, and runs the director's agent on them in loop
# mode. Prints first_sync_ms (start to a synced status with 1,000 services), ipvs_services and
# ipvs_destinations (counted by ipvsadm -Ln), and last rss_kib, the agent's VmRSS after the first
# sync and one more second. A benchmark: the figures are printed, not judged (target: under
# 40 MiB = 40960 KiB); the checks are only that the 1,000 services are really there.
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip
DIR=$LAB_RUN/manifests
SERVICES=1000
FIRST_PORT=10000

lab_step "topology; $SERVICES services in one manifest"
lab_topology 2
lab_must lab_bench_manifests "$DIR" "$SERVICES" "$FIRST_PORT"
lab_say "bench.yaml: $(wc -c <"$DIR/bench.yaml") bytes, $(grep -c '^kind: VirtualServer' "$DIR/bench.yaml") VirtualServers"

lab_step "the director's agent in loop mode"
start=$(lab_now_ms)
lab_agent_start director "$DIR"
synced=''
while [ $(($(lab_now_ms) - start)) -lt 240000 ]; do
    if lab_agent_synced_as director "$SERVICES" 0; then
        synced=$(lab_now_ms)
        break
    fi
    lab_running director agent || break
    sleep 0.05
done
lab_check "the agent reported a sync with $SERVICES services" test -n "$synced"
[ -n "$synced" ] || { lab_log_tail director agent 10; lab_finish; }
sleep 1
pid=$(lab_pid director agent)
lab_check_eq "the measured process is lvs-agent" "$(sed -n 's/^Name:[[:space:]]*//p' "/proc/$pid/status")" lvs-agent
rss=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status")
hwm=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status")
services=$(lab_ns director ipvsadm -Ln | grep -c "^TCP  $LAB_VIP:")
destinations=$(lab_ns director ipvsadm -Ln | grep -c -- '-> .*Route')
lab_check_eq "ipvsadm -Ln: services" "$services" "$SERVICES"
lab_check_eq "ipvsadm -Ln: destinations" "$destinations" $((SERVICES * 2))
lab_check_eq "status: kernel failures" "$(grep -c '"failures": *\[\]' "$LAB_RUN/agent.director.status")" 1
lab_agent_stop director
lab_say "peak RSS (VmHWM) ${hwm} KiB; target for VmRSS: under 40960 KiB (40 MiB)"
echo "first_sync_ms=$((synced - start))"
echo "ipvs_services=$services"
echo "ipvs_destinations=$destinations"
echo "rss_hwm_kib=$hwm"
if [ "$LAB_FAILURES" -gt 0 ]; then lab_finish; fi
echo "lab: all checks passed"
echo "rss_kib=$rss"
exit 0
