#!/bin/sh
# agent-tun6 — agent-tun over IPv6: examples/methods/tunnel.yaml with the lab's IPv6 addresses (VIP fd00:100::102, /64 persistence), IPv6-in-IPv6 to real servers holding the VIP on ip6tnl0; persistent to one, then both answer; one MAC answers NDP
# lab-timeout: 180
export LAB_FAMILY=6
. /lab/scenarios/agent-tun.sh
