#!/bin/sh
# ha-failover6 — ha-failover over IPv6: VIP fd00:100::100 on the directors' uplink, nodes and real servers known only by their IPv6 addresses (heartbeats over IPv6), a client whose neighbour entry for the VIP must move on the new director's unsolicited NA; prints gap_ms (target < 1000, as IPv4) and exactly one MAC answers NDP for the VIP before and after
# lab-timeout: 240
export LAB_HA_FAMILY=6
. /lab/scenarios/ha-failover.sh
