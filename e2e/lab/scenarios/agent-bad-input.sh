#!/bin/sh
# agent-bad-input — bad manifests dropped into the agents' folder: the problem names file, object and field, the valid service keeps serving, the fixed file is programmed without a restart, a file broken later keeps its services
# lab-timeout: 240
#
# Agents on the director and both real servers watch a folder with examples/nodes.yaml,
# examples/pool.yaml and web.yaml (examples/virtualserver.yaml, 10.100.0.100:80). A client loop to that service runs in
# the background throughout. Into the folder, as second.yaml, in turn:
#   1. manifests/second-service-unknown-field.yaml (spec.weightMode) and
#   2. manifests/second-service-bad-value.yaml (spec.scheduler: fastest): the director's status
#      `problems` and its log name second.yaml, VirtualServer lab/web2 and the field; nothing of
#      web2 is programmed;
#   3. manifests/second-service.yaml (valid: 10.100.0.101:80): programmed by the running agents,
#      both real servers answer on it;
#   4. second.yaml cut off mid-object (invalid YAML): the problem names the file; web2 — declared
#      by a file that no longer parses — must stay programmed and keep answering (a parse failure
#      is no request to delete).
# The background loop to web must never fail.
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip
DIR=$LAB_RUN/manifests
VIP=$LAB_VIP
VIP2=$LAB_VIP2

lab_step "topology, web servers, agents in loop mode on a folder"
lab_topology 2
for rs in $LAB_SERVERS; do lab_must lab_http_server "$rs" 80; done
lab_must lab_manifest_put "$DIR" nodes.yaml /lab/examples/nodes.yaml
lab_must lab_manifest_put "$DIR" pool.yaml /lab/examples/pool.yaml
lab_must lab_manifest_put "$DIR" web.yaml /lab/examples/virtualserver.yaml
for ns in director $LAB_SERVERS; do lab_agent_start "$ns" "$DIR"; done
lab_must lab_agent_wait_synced director 1 0
# shellcheck disable=SC2086 # the namespace list
lab_must lab_agent_wait_all 0 1 $LAB_SERVERS
lab_bg_loop_start web client tcp "$VIP" 80
lab_must lab_bg_loop_wait web 3

# put_second FILE — install FILE as second.yaml and wait until every agent reconciled it.
put_second() {
    for ns in director $LAB_SERVERS; do lab_agent_mark "$ns"; done
    lab_must lab_manifest_put "$DIR" second.yaml "$1"
    lab_must lab_agent_wait_synced director
    for ns in $LAB_SERVERS; do lab_must lab_agent_wait_synced "$ns"; done
}
# contains TEXT STRING — TEXT contains STRING.
contains() { printf '%s\n' "$1" | grep -qF -- "$2"; }
# check_problem LABEL FIELD — the director's status and log name second.yaml, lab/web2 and FIELD.
check_problem() {
    local problems line
    problems=$(lab_agent_problems director)
    echo "$problems" | sed 's/^/    problem: /'
    line=$(echo "$problems" | grep 'second.yaml' | head -n 1)
    lab_check "$1: a problem names the file second.yaml" test -n "$line"
    lab_check "$1: ... the object VirtualServer lab/web2" contains "$line" "VirtualServer lab/web2"
    lab_check "$1: ... the field $2" contains "$line" "$2"
    lab_check "$1: the director's log names file, object and field" \
        sh -c "grep 'second.yaml' '$LAB_RUN/log/director.agent.log' | grep 'lab/web2' | grep -qF '$2'"
    lab_check_eq "$1: director services (web only)" "$(lab_agent_status_field director directorServices)" 1
    lab_check "$1: nothing programmed for $VIP2" sh -c "! /sbin/ip netns exec director ipvsadm -Ln | grep -q '$VIP2:80'"
}

lab_step "1. an unknown field"
put_second /lab/manifests/second-service-unknown-field.yaml
check_problem "unknown field" spec.weightMode

lab_step "2. an invalid value"
put_second /lab/manifests/second-service-bad-value.yaml
check_problem "invalid value" spec.scheduler
lab_check "invalid value: the problem quotes the value" sh -c "grep -q 'fastest' '$LAB_RUN/agent.director.status'"

lab_step "3. the file fixed: a second service, no restart"
director_pid=$(lab_pid director agent)
for ns in director $LAB_SERVERS; do lab_agent_mark "$ns"; done
lab_must lab_manifest_put "$DIR" second.yaml /lab/manifests/second-service.yaml
lab_must lab_agent_wait_synced director 2 0
# shellcheck disable=SC2086
lab_must lab_agent_wait_all 0 2 $LAB_SERVERS
lab_check_eq "the director's agent was not restarted (pid)" "$(lab_pid director agent)" "$director_pid"
lab_check "no problem names second.yaml any more" sh -c "! grep -q 'second.yaml' '$LAB_RUN/agent.director.status'"
lab_check "director: TCP $VIP2:80 rr with both real servers" \
    lab_ns director sh -c "ipvsadm -Ln | grep -A3 'TCP  $VIP2:80 rr' | grep -c 'Route' | grep -qx 2"
lab_fast_loop client "$VIP2" 80 10
lab_check_loop "TCP to $VIP2:80" rs1 rs2

lab_step "4. the same file broken: cut off mid-object"
sed -n '1,/^  realServers:/p' /lab/manifests/second-service.yaml >"$LAB_RUN/broken.yaml"
printf '    selector: {matchLabels: {app: web2\n' >>"$LAB_RUN/broken.yaml"
put_second "$LAB_RUN/broken.yaml"
lab_agent_problems director | sed 's/^/    problem: /'
lab_check "broken file: a problem names second.yaml" sh -c "grep -q 'second.yaml' '$LAB_RUN/agent.director.status'"
sleep 2 # a reconcile that deletes would have happened by now
lab_ns director ipvsadm -Ln
lab_check "broken file: director still has TCP $VIP2:80 with both real servers" \
    lab_ns director sh -c "ipvsadm -Ln | grep -A3 'TCP  $VIP2:80 rr' | grep -c 'Route' | grep -qx 2"
for rs in $LAB_SERVERS; do
    lab_check "broken file: $rs still holds $VIP2 on lo" lab_ns "$rs" sh -c "/sbin/ip -4 addr show dev lo | grep -q '$VIP2/32'"
done
lab_fast_loop client "$VIP2" 80 6
lab_check_eq "broken file: TCP to $VIP2:80, requests without an answer" "$LAB_LOOP_FAILED" 0

lab_step "the valid service served throughout"
lab_bg_loop_stop web
lab_check_eq "client loop to $VIP:80: requests without an answer" "$LAB_BG_FAILED" 0
lab_check_ge "client loop to $VIP:80: requests" "$LAB_BG_TOTAL" 10
for ns in director $LAB_SERVERS; do lab_check "$ns: agent still running" lab_running "$ns" agent; done

lab_finish
