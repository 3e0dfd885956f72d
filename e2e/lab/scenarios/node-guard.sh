#!/bin/sh
# node-guard — the agent's nftables input guard closes a VIP to everything its VirtualServers do not declare: from the client, VIP:9750 (/metrics, here listening on every address), VIP:9751 (TCP) and VIP:22 (a server on the director) fail while VIP:80 answers; /metrics and port 22 still answer on the director's own address; UDP to the heartbeat port from a non-peer (the client) never reaches the agent (its rejected-heartbeat counter stays 0), while the peer directors' heartbeats still flow (no split brain) and their per-peer rate state is never taken for drift.
# lab-timeout: 150
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip

DIRECTOR_ADDRESS=10.100.0.2

# metrics — director's /metrics, fetched by the client on director's own address. stdin stays
# open until the answer is in: the agent's HTTP server drops a connection whose client
# half-closed before the response was written (busybox nc shuts down its side at stdin's end).
metrics() {
    { printf 'GET /metrics HTTP/1.0\r\n\r\n'; sleep 2; } | lab_ns client nc -w 3 "$DIRECTOR_ADDRESS" 9750
}

# rejected_heartbeats — the sum of director's lvs_agent_heartbeats_rejected_total (0 when no
# datagram was ever rejected: the family has no series yet).
rejected_heartbeats() {
    metrics | awk '/^lvs_agent_heartbeats_rejected_total/ { sum += $NF } END { print sum + 0 }'
}

# fails NS PROTO ADDR PORT — no answer from ADDR:PORT.
fails() { ! lab_request "$@" >/dev/null; }

lab_step "two directors (metrics on every address: only the guard closes the VIP), two real servers"
LAB_HA_ARGS="--metrics-address 0.0.0.0:9750 --resync-seconds 5"
lab_ha_setup
lab_must lab_http_server director 22

lab_step "the guard in table inet lvs-operator, on the holder and on the standby"
for ns in director director2; do
    lab_check "$ns: the VIP is guarded (set vip4), heartbeats only from peers" lab_ns "$ns" sh -c \
        "nft list set inet lvs-operator vip4 | grep -q '$LAB_HA_VIP' &&
         nft list chain inet lvs-operator input | grep -q 'udp dport 9751 drop'"
done
lab_ns director nft list chain inet lvs-operator input | sed 's/^/    /'

lab_step "through the VIP: the declared port answers, nothing else does"
lab_check "VIP:80 answers" lab_request client tcp "$LAB_HA_VIP" 80
lab_check "VIP:22 (a server on the director) fails" fails client tcp "$LAB_HA_VIP" 22
lab_check "VIP:9750 (/metrics) fails" fails client tcp "$LAB_HA_VIP" 9750
lab_check "VIP:9751 (TCP) fails" fails client tcp "$LAB_HA_VIP" 9751

lab_step "on the director's own address the guard changes nothing"
lab_check_eq "port 22 on $DIRECTOR_ADDRESS" "$(lab_request client tcp "$DIRECTOR_ADDRESS" 22)" director
series=$(metrics | grep -c '^lvs_agent_')
lab_check "/metrics answers on $DIRECTOR_ADDRESS:9750 ($series series)" [ "$series" -gt 0 ]

lab_step "datagrams to the heartbeat port from a non-peer (the client)"
before=$(rejected_heartbeats)
for target in "$DIRECTOR_ADDRESS" "$LAB_HA_VIP"; do
    for _ in 1 2 3 4 5; do
        echo "not a heartbeat" | lab_ns client socat -u - "UDP-SENDTO:$target:9751"
    done
done
sleep 1
after=$(rejected_heartbeats)
lab_say "rejected heartbeats on director: before $before, after $after"
lab_check_eq "datagrams from a non-peer that reached the agent" "$((after - before))" 0
lab_check "the peers' heartbeats still flow: director holds the VIP, director2 does not" lab_ha_only director
drift=$(metrics | awk '/^lvs_agent_drift_repairs_total/ { print $NF }')
lab_check_eq "drift repairs on director after resyncs every 5 s (the peers' rate state is not drift)" "${drift:-none}" 0
lab_finish
