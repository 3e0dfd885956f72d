#!/bin/sh
# demo — the README's demo: lvs-agent configures a director and two real servers from examples/ (direct routing); a client's requests, who answered each, the agent's status and ipvsadm -Ln
# lab-timeout: 180
#
# Run by e2e/demo. Agents in loop mode on the director and both real servers, from
# examples/virtualserver.yaml, nodes.yaml and pool.yaml; nothing else is configured but two web
# servers that answer with their name. Ten requests from the client to the VIP, one line each
# naming the real server that answered; then the director's agent status (JSON) and the IPVS
# table. Passes when every request was answered and both real servers answered.
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip
DIR=$LAB_RUN/manifests
VIP=$LAB_VIP

lab_step "network: a client, a director and two real servers (web servers answering their name)"
lab_topology 2
for rs in $LAB_SERVERS; do lab_must lab_http_server "$rs" 80; done

lab_step "lvs-agent on the director and both real servers, from examples/virtualserver.yaml, nodes.yaml and pool.yaml"
lab_must lab_manifest_put "$DIR" nodes.yaml /lab/examples/nodes.yaml
lab_must lab_manifest_put "$DIR" pool.yaml /lab/examples/pool.yaml
lab_must lab_manifest_put "$DIR" virtualserver.yaml /lab/examples/virtualserver.yaml
for ns in director $LAB_SERVERS; do lab_agent_start "$ns" "$DIR"; done
lab_must lab_agent_wait_synced director 1 0
# shellcheck disable=SC2086 # the namespace list
lab_must lab_agent_wait_all 0 1 $LAB_SERVERS
lab_say "all three agents report synced"

lab_step "10 requests from the client to http://$VIP/"
: >"$LAB_RUN/loop.txt"
i=0
while [ "$i" -lt 10 ]; do
    i=$((i + 1))
    answer=$(lab_request client tcp "$VIP" 80) || answer=FAIL
    echo "$answer" >>"$LAB_RUN/loop.txt"
    case $answer in
    FAIL) echo "request $i → no answer" ;;
    *) echo "request $i → $answer ($(lab_ip4 "$answer"))" ;;
    esac
done
lab_loop_results "10 requests to $VIP:80"
lab_check_loop "10 requests to $VIP:80" rs1 rs2

lab_step "the director's agent status ($LAB_RUN/agent.director.status)"
cat "$LAB_RUN/agent.director.status"
echo

lab_step "the director's IPVS table (ipvsadm -Ln)"
lab_ns director ipvsadm -Ln

lab_finish
