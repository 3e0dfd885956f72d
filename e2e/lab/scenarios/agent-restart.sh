#!/bin/sh
# agent-restart — kill -9 the director's lvs-agent under a steady client loop and start it again: no request fails, the restarted agent's first reconcile writes nothing
# lab-timeout: 180
#
# Agents on the director and both real servers run examples/virtualserver.yaml in loop mode. A
# client loop runs in the background for the whole step: the director's agent is killed with
# SIGKILL (nothing cleaned up, the kernel keeps its state), stays dead for two seconds, and is
# started again with the same ownership record: it adopts its state, its first status says 0
# operations and 0 kernel writes, the IPVS table is the same, and no request of the loop failed.
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip
DIR=$LAB_RUN/manifests
VIP=$LAB_VIP

lab_step "topology, web servers, agents in loop mode"
lab_topology 2
for rs in $LAB_SERVERS; do lab_must lab_http_server "$rs" 80; done
lab_must lab_manifest_put "$DIR" nodes.yaml /lab/examples/nodes.yaml
lab_must lab_manifest_put "$DIR" pool.yaml /lab/examples/pool.yaml
lab_must lab_manifest_put "$DIR" web.yaml /lab/examples/virtualserver.yaml
for ns in director $LAB_SERVERS; do lab_agent_start "$ns" "$DIR"; done
lab_must lab_agent_wait_synced director 1 0
# shellcheck disable=SC2086 # the namespace list
lab_must lab_agent_wait_all 0 1 $LAB_SERVERS
# table_shape — the director's IPVS table without counters.
table_shape() { lab_ns director ipvsadm -Ln | awk '{ print $1, $2, $3, $4 }'; }
table_before=$(table_shape)
lab_ns director ipvsadm -Ln

lab_step "a steady client loop; kill -9 the director's agent; start it again"
lab_bg_loop_start steady client tcp "$VIP" 80
lab_must lab_bg_loop_wait steady 5
old_pid=$(lab_pid director agent)
lab_must lab_kill director agent KILL
killed=$(lab_now_ms)
lab_say "killed the director's agent (pid $old_pid) with SIGKILL"
lab_check "the old agent is gone" sh -c "! kill -0 $old_pid 2>/dev/null"
lab_must lab_bg_loop_wait steady 3 "$killed"
sleep 2
lab_agent_mark director
lab_must lab_restart director agent
restarted=$(lab_now_ms)
lab_say "restarted it (pid $(lab_pid director agent))"
lab_must lab_agent_wait_synced director 1 0
cat "$LAB_RUN/agent.director.status"; echo
lab_check_eq "restarted agent's first reconcile: operations" "$(lab_agent_status_field director operations)" 0
lab_check_eq "restarted agent's first reconcile: kernel writes" "$(lab_agent_status_field director writes)" 0
lab_must lab_bg_loop_wait steady 5 "$restarted"
lab_bg_loop_stop steady
lab_check_eq "client loop: requests without an answer" "$LAB_BG_FAILED" 0
lab_check_ge "client loop: requests while the agent was dead" \
    "$(awk -v a="$killed" -v b="$restarted" '$1 >= a && $1 < b { n++ } END { print n + 0 }' "$LAB_RUN/bg.steady.txt")" 3
lab_check_ge "client loop: requests after the restart" "$(lab_bg_loop_count steady "$restarted")" 5
for rs in $LAB_SERVERS; do
    lab_check_ge "client loop: answers from $rs ($LAB_BG_SUMMARY)" \
        "$(awk -v r="$rs" '$3 == r { n++ } END { print n + 0 }' "$LAB_RUN/bg.steady.txt")" 1
done
lab_check_eq "the IPVS table (without counters) after the restart" "$(table_shape | tr '\n' ';')" \
    "$(echo "$table_before" | tr '\n' ';')"
lab_check "the restarted agent keeps running" lab_running director agent

lab_finish
