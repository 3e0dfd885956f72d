#!/bin/sh
# ha-api-down — failover in Kubernetes mode with the API server unreachable: agents on two directors and two real servers get their LvsNodeConfigs from lvs-controller through the API emulator (e2e/kmock/smoke); then every node loses the API server (its traffic to it dropped), and the active director is cut off under a request every 20 ms → the standby takes over within the same bound as in ha-failover. Prints gap_ms last.
# lab-timeout: 300
# lab-needs-host: e2e/kmock/smoke --scenario ha-api-down
#
# kmock-apply: examples/pool.yaml e2e/lab/manifests/ha-nodes.yaml e2e/lab/manifests/ha.yaml
# kmock-virtualserver: lab/web
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip

lab_step "the user-network NIC: 10.0.2.15, the host (emulator) at $LAB_KMOCK_HOST"
lab_kmock_nic

lab_step "two directors, two real servers; agents in Kubernetes mode with the failover key"
lab_topology 2 2
for rs in rs1 rs2; do lab_must lab_http_server "$rs" 80; done
lab_kmock_routes director director2 rs1 rs2
lab_ha_key
# director first (see lab_ha_setup): without preemption the first to start keeps the VIP.
for ns in director rs1 rs2; do
    lab_kmock_agent "$ns" LVS_FAILOVER_KEY_FILE="$LAB_HA_KEY"
done
lab_must lab_wait 90 lab_ha_holds director
lab_kmock_agent director2 LVS_FAILOVER_KEY_FILE="$LAB_HA_KEY"
lab_must lab_wait 60 sh -c "/sbin/ip netns exec director2 ipvsadm -Ln | grep -q '10.100.0.100:80'"
lab_check "director (priority 1) holds the VIP, director2 does not" lab_wait 30 lab_ha_only director
lab_must lab_wait 30 lab_ns rs2 sh -c "/sbin/ip -4 addr show dev lo | grep -q '$LAB_HA_VIP/32'"
lab_fast_loop client "$LAB_HA_VIP" 80 10
lab_check_loop "TCP to $LAB_HA_VIP:80 through director" rs1 rs2

lab_step "the API server becomes unreachable from every node"
printf '%s\n' "table ip api-down {" "    chain forward {" \
    "        type filter hook forward priority filter;" \
    "        ip daddr $LAB_KMOCK_HOST drop" "    }" "}" | lab_must nft -f -
lab_check "director cannot reach the API server" sh -c "! $(command -v ip) netns exec director nc -w 2 $LAB_KMOCK_HOST $LAB_KMOCK_PORT </dev/null"
sleep 2

lab_step "a request every 20 ms; director is cut off"
lab_ha_failover_under_load api
lab_check "director2's agent keeps running without the API server" lab_running director2 agent
echo "gap_ms=$LAB_HA_GAP"
lab_finish
