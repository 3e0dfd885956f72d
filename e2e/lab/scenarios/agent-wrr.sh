#!/bin/sh
# agent-wrr — lvs-agent in loop mode, a wrr service with real-server weights 1 and 3: over 400 requests the shares are 25%/75% within 5 points
# lab-timeout: 180
#
# manifests/wrr.yaml: direct routing to rs1 (weight 1) and rs2 (weight 3), no health checks.
# 400 sequential requests from the client; each real server's share of the answers must be
# within ±5 points of its weight's share. Prints the shares (share_rs1=, share_rs2= percent).
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip
DIR=$LAB_RUN/manifests
VIP=10.100.0.105
COUNT=400

lab_step "topology, web servers, agents in loop mode"
lab_topology 2
for rs in $LAB_SERVERS; do lab_must lab_http_server "$rs" 80; done
lab_must lab_manifest_put "$DIR" nodes.yaml /lab/examples/nodes.yaml
lab_must lab_manifest_put "$DIR" pool.yaml /lab/examples/pool.yaml
lab_must lab_manifest_put "$DIR" wrr.yaml /lab/manifests/wrr.yaml
for ns in director $LAB_SERVERS; do lab_agent_start "$ns" "$DIR"; done
lab_must lab_agent_wait_synced director 1 0
# shellcheck disable=SC2086 # the namespace list
lab_must lab_agent_wait_all 0 1 $LAB_SERVERS
lab_ns director ipvsadm -Ln
lab_check "director: TCP $VIP:80 wrr, rs1 weight 1, rs2 weight 3" lab_ns director sh -c \
    "ipvsadm -Ln | grep -A3 'TCP  $VIP:80 wrr' | grep -q '$LAB_RS1_IP:80 *Route *1 ' &&
     ipvsadm -Ln | grep -A3 'TCP  $VIP:80 wrr' | grep -q '$LAB_RS2_IP:80 *Route *3 '"

lab_step "$COUNT requests"
lab_fast_loop client "$VIP" 80 "$COUNT"
lab_check_eq "requests without an answer" "$LAB_LOOP_FAILED" 0
for pair in rs1:25 rs2:75; do
    rs=${pair%:*} want=${pair#*:}
    share=$(awk -v n="$(lab_loop_count "$rs")" -v c="$COUNT" 'BEGIN { printf "%.1f", 100 * n / c }')
    echo "share_$rs=$share"
    lab_check "$rs: share $share% within 5 points of $want%" \
        awk -v s="$share" -v w="$want" 'BEGIN { d = s - w; exit !(d <= 5 && d >= -5) }'
done

lab_finish
