#!/bin/sh
# agent-once-error — lvs-agent --standalone --once with a scheduler the lab kernel lacks (twos): non-zero exit, stderr names the scheduler
# lab-timeout: 120
#
# The lab's kernel (6.1) has no ip_vs_twos module (the "random of two" scheduler came with
# 6.3); manifests/scheduler-twos.yaml asks for it. One `lvs-agent --standalone --once` on the
# director must exit non-zero with a message on stderr naming the scheduler, and must not leave a
# half-made IPVS service behind. The stderr is printed.
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip

lab_step "topology; the premise: no ip_vs_twos module in this kernel"
lab_topology 2
lab_must lab_modprobe ip_vs
lab_check "modprobe ip_vs_twos fails" sh -c "! modprobe ip_vs_twos 2>/dev/null"
lab_check "no ip_vs_twos module loaded" test ! -d /sys/module/ip_vs_twos

lab_step "lvs-agent --once on the director"
lab_ns director lvs-agent --standalone --once --node-name director-1 \
    --registry "$LAB_RUN/agent.director.owned.json" --failover-state "$LAB_RUN/agent.director.failover.json" --status-file "$LAB_RUN/agent.director.status" \
    --manifests /lab/manifests/scheduler-twos.yaml /lab/examples/nodes.yaml /lab/examples/pool.yaml \
    >"$LAB_RUN/once.stdout" 2>"$LAB_RUN/once.stderr"
rc=$?
echo "exit status: $rc"
echo "stderr:"
sed 's/^/    /' "$LAB_RUN/once.stderr"
lab_check "exit status is non-zero ($rc)" test "$rc" -ne 0
lab_check "stderr has an error line of the agent's naming the scheduler twos" grep -q '^lvs-agent: .*twos' "$LAB_RUN/once.stderr"
lab_check "the status file reports the failure, naming twos" \
    sh -c "grep -q '\"synced\": *false' '$LAB_RUN/agent.director.status' && sed -n '/\"failures\"/,/\\]/p' '$LAB_RUN/agent.director.status' | grep -q twos"
lab_ns director ipvsadm -Ln
lab_check "no IPVS service for 10.100.0.106:80 left behind" \
    sh -c "! /sbin/ip netns exec director ipvsadm -Ln | grep -q '10.100.0.106:80'"
lab_check "the VIP of the failed service is not taken (it would attract traffic nothing serves)" \
    sh -c "! /sbin/ip netns exec director /sbin/ip -4 addr show 2>/dev/null | grep -q '10.100.0.106/32'"
echo "message: $(grep '^lvs-agent: .*twos' "$LAB_RUN/once.stderr" | head -n 1)"

lab_finish
