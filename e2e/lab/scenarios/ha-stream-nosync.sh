#!/bin/sh
# ha-stream-nosync — the negative control of ha-stream: the same failover with connection sync disabled breaks the TCP stream (the new director has no entry for the connection and the client gets a reset), and no sync daemon runs.
# lab-timeout: 240
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip

lab_step "two directors, connection sync disabled"
lab_ha_setup 's/enabled: true/enabled: false/'
lab_check "no sync daemon on director" sh -c \
    "! /sbin/ip netns exec director ipvsadm -L --daemon | grep -q 'sync daemon'"
lab_ha_stream_across_failover breaks
lab_finish
