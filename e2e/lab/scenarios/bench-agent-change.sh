#!/bin/sh
# bench-agent-change — lvs-agent in loop mode with 1,001 services: what one change costs the agent and what a resync with nothing changed costs; prints resync_writes, resync_ms, change_writes, change_pass_ms and last change_to_kernel_ms
# lab-timeout: 300
#
# The director's agent runs standalone on one folder: the 1,000 services of bench-agent-memory
# (one VIP, ports 10000–10999, two shared RealServers, health checks off) plus one more service on
# port 11000 with a RealServer of its own (weight 1) in a file of its own. Figures from the agent's
# /metrics (on 127.0.0.1 in the director's namespace): the kernel operations
# (lvs_agent_kernel_operations_total) and the pass duration (lvs_agent_reconcile_duration
# histogram, sum over count) of
#   - a resync pass with nothing changed (--resync-seconds 5): resync_writes (0 expected: checked)
#     and resync_ms;
#   - the pass after that RealServer's weight was changed to 5 in its file: change_writes (the
#     kernel operations it took; 1 expected: checked) and change_pass_ms;
# and change_to_kernel_ms, from the file's replacement until `ipvsadm` (asked every 200 ms: more
# often slows the emulated VM's one CPU down under the agent) shows the new weight. In standalone
# mode the folder is polled every second, so change_to_kernel_ms includes up to 1 s of waiting
# for the poll; change_pass_ms is the agent's own work. Figures, not judged.
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip
DIR=$LAB_RUN/manifests
SERVICES=1000
FIRST_PORT=10000
ONE_PORT=11000

# metrics — the director's agent's /metrics into $LAB_RUN/metrics.last (asked again, up to five
# times, while the answer lacks the pass counter: the agent may be busy with a pass of 1,001
# services).
metrics() {
    for _ in 1 2 3 4 5; do
        { printf 'GET /metrics HTTP/1.0\r\n\r\n'; sleep 2; } |
            lab_ns director nc -w 5 127.0.0.1 9750 >"$LAB_RUN/metrics.last"
        grep -q '^lvs_agent_reconcile_duration.*_count' "$LAB_RUN/metrics.last" && return 0
    done
    lab_fail "the agent's /metrics did not answer with its pass counter"
}

# figures — sets OPERATIONS (kernel operations so far), PASSES (reconcile passes so far) and
# SECONDS_SPENT (their total duration).
figures() {
    metrics
    awk '
        /^lvs_agent_kernel_operations_total/ { operations += $NF }
        /^lvs_agent_reconcile_duration(_seconds)?_count/ { passes += $NF }
        /^lvs_agent_reconcile_duration(_seconds)?_sum/ { seconds += $NF }
        END { printf "%d %d %.6f\n", operations, passes, seconds }' "$LAB_RUN/metrics.last" >"$LAB_RUN/figures"
    read -r OPERATIONS PASSES SECONDS_SPENT <"$LAB_RUN/figures"
}

# per_pass_ms SECONDS_BEFORE PASSES_BEFORE — the mean duration of the passes since, ms.
per_pass_ms() {
    awk -v a="$1" -v b="$SECONDS_SPENT" -v n=$((PASSES - $2)) 'BEGIN { printf "%.1f", (b - a) * 1000 / (n > 0 ? n : 1) }'
}

# one_service WEIGHT — the port-11000 VirtualServer and its own RealServer, of that weight.
one_service() {
    printf 'apiVersion: lvs.operator.io/v1alpha1\nkind: VirtualServer\nmetadata:\n  name: one\n  namespace: bench\n'
    printf 'spec:\n  address: %s\n  port: %d\n  scheduler: wrr\n  forwarding:\n    method: DirectRouting\n' "$LAB_VIP" "$ONE_PORT"
    printf '  realServers:\n    selector:\n      matchLabels:\n        app: one\n  healthCheck:\n    type: None\n---\n'
    printf 'apiVersion: lvs.operator.io/v1alpha1\nkind: RealServer\nmetadata:\n  name: one-rs\n  namespace: bench\n  labels:\n    app: one\nspec:\n  address: 10.100.0.11\n  weight: %d\n' "$1"
}

# kernel_weight — the weight IPVS holds for the port-11000 service's real server.
kernel_weight() {
    lab_ns director ipvsadm -Ln -t "$LAB_VIP:$ONE_PORT" | awk '/-> 10.100.0.11:/ { print $4 }'
}

lab_step "topology; $((SERVICES + 1)) services in two manifests"
lab_topology 2
lab_must lab_bench_manifests "$DIR" "$SERVICES" "$FIRST_PORT"
one_service 1 >"$LAB_RUN/one.yaml"
lab_must lab_manifest_put "$DIR" one.yaml "$LAB_RUN/one.yaml"

lab_step "the director's agent in loop mode (resync every 5 s, /metrics on 127.0.0.1:9750)"
export LAB_AGENT_ARGS="--resync-seconds 5 --metrics-address 127.0.0.1 --metrics-port 9750"
lab_agent_start director "$DIR"
lab_agent_wait_synced director $((SERVICES + 1)) 0 240 || lab_finish
lab_check_eq "the port-$ONE_PORT real server's weight in the kernel" "$(kernel_weight)" 1

lab_step "a resync with nothing changed"
figures
operations=$OPERATIONS passes=$PASSES seconds=$SECONDS_SPENT
lab_say "before: $operations kernel operations, $passes passes"
resynced=''
for _ in $(seq 1 40); do
    sleep 0.5
    figures
    if [ "$PASSES" -gt "$passes" ]; then
        resynced=yes
        break
    fi
done
lab_check "a resync pass ran within 20 s" test -n "$resynced"
resync_writes=$((OPERATIONS - operations))
resync_ms=$(per_pass_ms "$seconds" "$passes")
lab_check_eq "kernel operations of the resync" "$resync_writes" 0

lab_step "one RealServer's weight changed in its file"
figures
operations=$OPERATIONS passes=$PASSES seconds=$SECONDS_SPENT
one_service 5 >"$LAB_RUN/one.yaml"
start=$(lab_now_ms)
lab_must lab_manifest_put "$DIR" one.yaml "$LAB_RUN/one.yaml"
changed=''
while [ $(($(lab_now_ms) - start)) -lt 30000 ]; do
    if [ "$(kernel_weight)" = 5 ]; then
        changed=$(lab_now_ms)
        break
    fi
    sleep 0.2
done
lab_check "the kernel holds weight 5 within 30 s" test -n "$changed"
sleep 1.5 # the pass's figures: the status and metrics follow the kernel
figures
change_writes=$((OPERATIONS - operations))
change_pass_ms=$(per_pass_ms "$seconds" "$passes")
lab_say "$((PASSES - passes)) pass(es) after the change; the agent's last lines:"
lab_log_tail director agent 6
lab_check_eq "kernel operations of the change" "$change_writes" 1
lab_check_eq "ipvsadm -Ln: services" "$(lab_ns director ipvsadm -Ln | grep -c "^TCP  $LAB_VIP:")" $((SERVICES + 1))
lab_agent_stop director
echo "resync_writes=$resync_writes"
echo "resync_ms=$resync_ms"
echo "change_writes=$change_writes"
echo "change_pass_ms=$change_pass_ms"
if [ "$LAB_FAILURES" -gt 0 ]; then lab_finish; fi
echo "lab: all checks passed"
echo "change_to_kernel_ms=$((${changed:-$start} - start))"
exit 0
