#!/bin/sh
# ha-stream — connection sync: with the kernel's sync daemon (master on the active director, backup on the standby, sync ID 7 on eth0), a TCP connection streaming through the VIP keeps flowing after the active director is cut off and the standby takes over; the standby reported the connections it held before the failover. ha-stream-nosync is the negative control.
# lab-timeout: 240
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip

lab_step "two directors with connection sync"
lab_ha_setup
lab_ns director ipvsadm -L --daemon
lab_check "director runs the master and backup sync daemons" sh -c \
    "/sbin/ip netns exec director ipvsadm -L --daemon | grep -q 'master sync daemon (mcast=eth0, syncid=7' && /sbin/ip netns exec director ipvsadm -L --daemon | grep -q 'backup sync daemon (mcast=eth0, syncid=7'"
lab_check "director2 runs the backup sync daemon only" sh -c \
    "/sbin/ip netns exec director2 ipvsadm -L --daemon | grep -q 'backup sync daemon (mcast=eth0, syncid=7' && ! /sbin/ip netns exec director2 ipvsadm -L --daemon | grep -q master"
lab_ha_stream_across_failover survives
lab_check "director2 reported the synced connections it held (status connectionSync.connections >= 1)" \
    sh -c "sed -n 's/.*\"connections\": *\([0-9]*\).*/\1/p' '$LAB_RUN/agent.director2.status' | awk '\$1 >= 1 { ok = 1 } END { exit !ok }'"
lab_check "director2 runs the master sync daemon now" sh -c \
    "/sbin/ip netns exec director2 ipvsadm -L --daemon | grep -q 'master sync daemon'"
lab_finish
