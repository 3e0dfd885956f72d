#!/bin/sh
# ha-replay — heartbeats cannot be replayed: the client (a third host without the key) mirrors director's heartbeats to director2 (nft dup, as a switch's mirror port would) across a restart of director's agent (two incarnations), then director is cut off and the client replays every captured datagram in a loop, from its own address and with director's address spoofed → director2 refuses them (the spoofed ones as replays, heartbeats_rejected reason=replay; the client's own address stopped by the input guard, or reason=wrong_source without it), still takes the VIP over, and serves. Prints gap_ms (target < 1000).
# lab-timeout: 180
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip

DIRECTOR_IP=$LAB_NET4.2
DIRECTOR2_IP=$LAB_NET4.3
CLIENT_IP=$LAB_NET4.10
CAPTURE=$LAB_RUN/capture

# metrics NS — NS's agent's /metrics.
metrics() {
    /sbin/ip netns exec "$1" sh -c "printf 'GET /metrics HTTP/1.0\r\n\r\n' | nc -w 5 127.0.0.1 9750" 2>/dev/null
}

# rejected NS REASON — NS's agent counted heartbeats rejected for REASON.
rejected() { metrics "$1" | grep -q "heartbeats_rejected_total{reason=\"$2\"} [1-9]"; }

# own_address_refused — director2 never takes a datagram from the client's own address: its input
# guard (nftables, `udp dport 9751` from the peer set only, else drop) stops it before the agent,
# and without the guard the agent counts it as wrong_source.
own_address_refused() {
    rejected director2 wrong_source && return 0
    /sbin/ip netns exec director2 nft list chain inet lvs-operator input 2>/dev/null |
        grep -q 'udp dport 9751 drop'
}

lab_step "two directors, two real servers; director holds the VIP"
LAB_HA_ARGS="--metrics-address 127.0.0.1:9750"
lab_ha_setup

lab_step "the client captures director's heartbeats to director2"
# director mirrors them to the client; the client takes them in on its own UDP 9751, one file
# per datagram (socat forks per datagram). Replayed below in capture order, two datagrams every
# 100 ms or so (a dead interval is 600 ms): before the fix, the two incarnations alternating made
# every replay "fresh".
lab_must /sbin/ip netns exec director nft -f - <<NFT
table ip lab-mirror {
    chain output { type filter hook output priority 0; ip daddr $DIRECTOR2_IP udp dport 9751 dup to $CLIENT_IP; }
}
NFT
lab_must /sbin/ip netns exec client nft -f - <<NFT
table ip lab-capture {
    chain prerouting { type nat hook prerouting priority -100; ip daddr $DIRECTOR2_IP udp dport 9751 dnat to $CLIENT_IP; }
}
NFT
mkdir -p "$CAPTURE"
lab_spawn client capture socat -u UDP-RECVFROM:9751,fork "SYSTEM:cat >$CAPTURE/d.\$\$"
lab_must lab_wait_listen client udp 9751
sleep 2
lab_step "director's agent restarts (a second incarnation), still holding the VIP"
lab_must lab_kill director agent TERM
lab_agent_mark director
lab_must lab_restart director agent
lab_must lab_agent_wait_synced director 2 0
sleep 2
lab_check "director still holds the VIP" lab_ha_only director
lab_kill client capture
captured=$(find "$CAPTURE" -type f -size +0 | wc -l)
lab_say "captured $captured datagrams"
lab_check "at least 10 datagrams captured" [ "$captured" -ge 10 ]

lab_step "director is cut off; the client replays the capture in a loop, from its own and director's address"
lab_ha_client_start p
sleep 2
lab_ha_cut director
lab_must /sbin/ip -n client addr add "$DIRECTOR_IP/32" dev eth0
# shellcheck disable=SC2016 # the loop runs in the namespace's shell
lab_spawn client replay sh -c '
    while [ ! -e "$1.stop" ]; do
        for datagram in $(ls -tr "$1"); do
            socat -u "OPEN:$1/$datagram" "UDP-SENDTO:$2:9751"
            socat -u "OPEN:$1/$datagram" "UDP-SENDTO:$2:9751,bind=$3"
            sleep 0.1
        done
    done' sh "$CAPTURE" "$DIRECTOR2_IP" "$DIRECTOR_IP"
lab_check "director2 takes the VIP despite the replays" lab_wait 10 lab_ha_holds director2
# Every 100 ms for 3 s: director2 keeps the VIP (a replayed "active" from director, the preferred
# director, would make it step down).
lost=0
for _ in $(seq 30); do
    lab_ha_holds director2 || lost=$((lost + 1))
    sleep 0.1
done
lab_check_eq "samples in which director2 had lost the VIP again" "$lost" 0
lab_ha_client_stop p
: >"$CAPTURE.stop"
lab_ha_gap p "$LAB_HA_CUT"
lab_check "answers after the takeover" [ "$LAB_HA_GAP" != never ]
lab_check_eq "requests started after the gap that failed" "$LAB_HA_LATE_FAILURES" 0
lab_check "director2 refused replays (heartbeats_rejected reason=replay)" lab_wait 10 rejected director2 replay
lab_check "director2 refused the client's own address (its input guard admits heartbeats from peers only, or reason=wrong_source)" \
    lab_wait 10 own_address_refused
metrics director2 | grep heartbeats_rejected_total | sed 's/^/    /'
lab_kill client replay >/dev/null 2>&1
echo "gap_ms=$LAB_HA_GAP"
lab_finish
