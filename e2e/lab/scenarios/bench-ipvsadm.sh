#!/bin/sh
# bench-ipvsadm — reference figure: ipvsadm -R of 1,000 services x 10 destinations from empty
# lab-timeout: 600
#
# Last line: ipvsadm_restore_ms=<n>, the time `ipvsadm -R` takes to program the rules that
# lab_bench_rules prints, in a namespace where the destinations are routable (a dummy device
# holds 10.201.0.0/16). A later dataplane benchmark programs the same rules in the same way.
. /lab/lib/lab.sh
lab_must lab_modprobe ip_vs dummy

SERVICES=1000 DESTINATIONS=10
lab_must ip netns add bench
lab_must ip -n bench link set lo up
lab_must ip -n bench link add bench0 type dummy
lab_must ip -n bench addr add 10.201.0.1/16 dev bench0
lab_must ip -n bench link set bench0 up
lab_bench_rules "$SERVICES" "$DESTINATIONS" >"$LAB_RUN/bench.rules"
lab_say "rules: $(grep -c '^-A' "$LAB_RUN/bench.rules") services, $(grep -c '^-a' "$LAB_RUN/bench.rules") destinations"

start=$(lab_now_ms)
lab_ns bench ipvsadm -R <"$LAB_RUN/bench.rules"
rc=$?
elapsed=$(($(lab_now_ms) - start))
lab_check_eq "ipvsadm -R exit status" "$rc" 0
lab_check_eq "services in the kernel" "$(lab_ns bench ipvsadm -Ln | grep -c '^TCP')" "$SERVICES"
lab_check_eq "destinations in the kernel" "$(lab_ns bench ipvsadm -Ln | grep -c '^  ->.*Masq')" \
    $((SERVICES * DESTINATIONS))
[ "$LAB_FAILURES" -eq 0 ] || lab_finish
echo "ipvsadm_restore_ms=$elapsed"
