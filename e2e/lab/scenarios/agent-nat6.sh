#!/bin/sh
# agent-nat6 — agent-nat over IPv6: examples/methods/nat.yaml with the lab's IPv6 addresses (VIP fd00:100::101 → real servers' :8080), IPv6 forwarding without losing router advertisements, masquerade, both answer, one MAC answers NDP
# lab-timeout: 180
export LAB_FAMILY=6
. /lab/scenarios/agent-nat.sh
