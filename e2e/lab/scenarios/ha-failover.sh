#!/bin/sh
# ha-failover — two directors with failover (default settings: heartbeats every 200 ms, dead after 3): the client sends an HTTP request every 20 ms and a UDP datagram every 20 ms (one socat, echoed by the real servers); the active director is cut off (its link down, its agent killed) → the standby takes the VIP, announces it and serves; no request that starts after the gap fails. Prints where the time goes (cut → decision → VIP added → the client learns the MAC → first answer), the standby's detection and announcement times and, last, gap_ms: the longest time without a UDP echo across the cut (target < 1000; http_gap_ms is the same from the HTTP loop, which under emulation adds 200-500 ms of its own: a request leaves every ~80 ms and takes ~250 ms).
# lab-timeout: 240
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip

lab_step "two directors, two real servers; the agents share a failover key"
lab_ha_setup
lab_ha_udp_setup
lab_ha_probe client
lab_check_eq "MACs answering ARP (IPv6: NDP) for the VIP: $(lab_arp_owners)" "$LAB_ARP_MACS" "$LAB_DIRECTOR_MAC"

lab_step "a request every 20 ms; director is cut off"
lab_ha_timeline_start
lab_ha_udp_start
lab_ha_failover_under_load f
cut=$LAB_HA_CUT
lab_ha_udp_stop "$cut"
lab_check "UDP echoes after the cut" [ "$LAB_HA_UDP_GAP" != never ]
lab_ha_timeline f
lab_check "answers from both real servers after the cut" sh -c \
    "awk -v c=$cut '\$2 > c && \$3 == \"rs1\" { a++ } \$2 > c && \$3 == \"rs2\" { b++ } END { exit !(a && b) }' $LAB_RUN/ha.f.txt"
lab_ha_probe client
lab_check_eq "MACs answering ARP (IPv6: NDP) for the VIP: $(lab_arp_owners)" "$LAB_ARP_MACS" "$LAB_DIRECTOR2_MAC"

lab_step "director2's record of the takeover"
lab_must lab_wait 5 grep -q '"garpSentAt"' "$LAB_RUN/agent.director2.status"
sed -n '/"lastFailover"/,/}/p' "$LAB_RUN/agent.director2.status"
detection=$(lab_agent_status_field director2 detectionMillis)
duration=$(lab_agent_status_field director2 durationMillis)
lab_check "the record names director-1 as the previous holder" grep -q '"from": "director-1"' "$LAB_RUN/agent.director2.status"
echo "detection_ms=$detection"
echo "garp_after_detection_ms=$((duration - detection))"
echo "failover_duration_ms=$duration"
echo "http_gap_ms=$LAB_HA_GAP"
echo "cut_to_echo_ms=$LAB_HA_UDP_FIRST"
echo "gap_ms=$LAB_HA_UDP_GAP"
lab_finish
