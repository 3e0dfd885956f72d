#!/bin/sh
# lab-selftest — the helpers themselves: topology naming, kill/restart, UDP over IPv6, ARP probe, clock
# lab-timeout: 120
#
# Checks what the other scenarios rely on but do not exercise: two directors, killing and
# restarting a named process, a UDP server on IPv6, an ARP probe of a single owner and of an
# unused address (no answer), and the millisecond clock.
. /lab/lib/lab.sh

lab_topology 1 2
lab_check_eq "second director's address" "${LAB_DIRECTOR2_IP:-unset}" 10.100.0.3
lab_check_eq "namespaces" "$(ip netns list | awk '{ print $1 }' | sort | tr '\n' ' ')" \
    "client director director2 rs1 "

lab_must lab_http_server rs1 80
lab_check_eq "HTTP answer from rs1" "$(lab_request client tcp "$LAB_RS1_IP" 80)" rs1
pid=$(lab_pid rs1 http-80)
lab_must lab_kill rs1 http-80
lab_check "rs1's httpd (pid $pid) is gone after lab_kill" sh -c "! kill -0 $pid 2>/dev/null"
lab_check "no HTTP answer while it is down" sh -c "! /sbin/ip netns exec client nc -w 2 $LAB_RS1_IP 80 </dev/null"
lab_must lab_restart rs1 http-80
lab_must lab_wait_listen rs1 tcp 80
lab_check_eq "HTTP answer from rs1 after lab_restart" "$(lab_request client tcp "$LAB_RS1_IP" 80)" rs1

lab_must lab_udp_server rs1 5301 "$LAB_RS1_IP6"
lab_check_eq "UDP/IPv6 answer from rs1" "$(lab_request client udp "$LAB_RS1_IP6" 5301)" rs1

lab_arp_probe client "$LAB_RS1_IP" 2
lab_check_eq "MACs answering ARP for rs1's address" "$LAB_ARP_MACS" "$LAB_RS1_MAC"
lab_arp_probe client 10.100.0.250 2
lab_check_eq "MACs answering ARP for an unused address" "$LAB_ARP_COUNT" 0

start=$(lab_now_ms)
sleep 1
elapsed=$(($(lab_now_ms) - start))
lab_check "lab_now_ms measures a 1 s sleep as 900..3000 ms ($elapsed)" sh -c "[ $elapsed -ge 900 ] && [ $elapsed -le 3000 ]"

lab_finish
