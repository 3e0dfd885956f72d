#!/bin/sh
# ha-split-brain6 — ha-split-brain over IPv6: heartbeats (over IPv6) dropped both ways, both directors end up holding fd00:100::100, each one's NDP duplicate probe finds the other's MAC, DuplicateVIP is reported and resolved, and exactly one MAC answers NDP for the VIP; prints resolved_ms
# lab-timeout: 240
export LAB_HA_FAMILY=6
. /lab/scenarios/ha-split-brain.sh
