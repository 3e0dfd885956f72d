#!/bin/sh
# svc-lb — a LoadBalancer Service of class lvs.operator.io/ipvs end to end (e2e/kmock/smoke --scenario svc-lb), with a kube-proxy stand-in on every node: lvs-controller gives it a VIP from the pool and makes rs-1 and rs-2 (which have its endpoints) real servers; the client is answered through the VIP by the pods on both nodes, each seeing the client's own address, the director's kube-proxy rules never seeing a packet; then externalTrafficPolicy Local, and rs-2's endpoint ends (terminating, then gone) under a request loop → rs-2 drains, no request fails, only rs-1's pod answers
# lab-timeout: 300
# lab-needs-host: e2e/kmock/smoke --scenario svc-lb
#
# kmock-apply: examples/pool.yaml e2e/lab/manifests/svc-lb.yaml
# kmock-virtualserver: shop/svc-web-http
#
# Runs only through e2e/kmock/smoke (the emulator on the host with the manifests applied, and
# lvs-controller running against it; see kmock-smoke.sh). The nodes: director (director-1, the
# only node with a role label), rs1 (rs-1) and rs2 (rs-2), each running lvs-agent in Kubernetes
# mode; the "pods": namespaces pod1 behind rs1 (10.244.1.2) and pod2 behind rs2 (10.244.2.2),
# each with a web server on :8080 that names itself, routed through their node.
#
# STAND-IN: no kube-proxy runs here. Every node, the director included, gets a stand-in that
# does only what kube-proxy (iptables or nftables mode) does for a LoadBalancer IP with
# `ipMode: VIP` on that node, in nat chains of its own table:
# - rs1, rs2: a DNAT of VIP:80 to the node's local pod's :8080 (kube-proxy in Cluster mode may
#   also pick another node's endpoint and masquerade; this stand-in picks the local one, which
#   kube-proxy does with Local), removed when the node has no endpoint under Local; the
#   healthCheckNodePort server (:32000, HTTP 200 while the node has a ready local endpoint, 503
#   otherwise); and kube-proxy's own health endpoint (:10256, 200: its rules are in sync), which
#   the directors check under Cluster.
# - director (no pod of the Service): under Cluster a DNAT of VIP:80 to pod1 with masquerade
#   (the pod network routed through the nodes, as a CNI would), under Local a drop (no local
#   endpoint). Its rule must never see a packet: the agent makes the director's IPVS services
#   skip conntrack, so no NAT chain takes their traffic from IPVS (checked with its counter). The scenario also plays the endpoint controller: it writes the EndpointSlice the
# way it would (an ending pod's endpoint turns ready=false/terminating first, then goes).
. /lab/lib/lab.sh
lab_must command -v lvs-agent # from LAB_EXTRA_BINARIES: missing is a failure, never a skip
SVC_PATH=/api/v1/namespaces/shop/services/web
SLICE_PATH=/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices/web-x7k2p
HEALTH_PORT=32000

# endpoint POD_IP NODE READY — one EndpointSlice endpoint as JSON (not ready = terminating).
endpoint() {
    local terminating=false
    [ "$3" = true ] || terminating=true
    printf '{"addresses":["%s"],"nodeName":"%s","conditions":{"ready":%s,"serving":true,"terminating":%s}}' \
        "$1" "$2" "$3" "$terminating"
}

# endpoints JSON... — the EndpointSlice's endpoints become the list given.
endpoints() {
    local IFS=,
    lab_kmock_patch "$SLICE_PATH" "{\"endpoints\":[$*]}"
}

# The stand-in's healthCheckNodePort answer for one request, its state file $1
# ($LAB_RUN/standin.NODE_NS.ready): 200 while it says 1, 503 otherwise (kube-proxy counts ready
# local endpoints); each answer is logged to $1.answered.
cat >"$LAB_RUN/standin-health" <<'EOF'
#!/bin/sh
while read -r line && [ "$(printf '%s' "$line" | tr -d '\r')" != "" ]; do :; done
echo "$(cat "$1")" >>"$1.answered"
if [ "$(cat "$1")" = 1 ]; then
    printf 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{"service":"shop/web","localEndpoints":1}\n'
else
    printf 'HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{"service":"shop/web","localEndpoints":0}\n'
fi
EOF
chmod +x "$LAB_RUN/standin-health"

# standin NODE_NS POD_NS N — the node's pod (10.244.N.2 behind 10.244.N.1) with its web server,
# and the kube-proxy stand-in for VIP:80 → that pod:8080, its health port answering 200.
standin() {
    local node=$1 pod=$2 n=$3
    lab_must ip netns add "$pod"
    lab_must ip -n "$pod" link set lo up
    lab_must ip link add "p-$pod" netns "$node" type veth peer name eth0 netns "$pod"
    lab_must ip -n "$node" addr add "10.244.$n.1/24" dev "p-$pod"
    lab_must ip -n "$node" link set "p-$pod" up
    lab_must ip -n "$pod" addr add "10.244.$n.2/24" dev eth0
    lab_must ip -n "$pod" link set eth0 up
    lab_must ip -n "$pod" route add default via "10.244.$n.1"
    lab_must lab_ns "$node" sysctl -qw net.ipv4.ip_forward=1
    lab_must lab_http_server "$pod" 8080 "$pod"
    printf '%s\n' "table ip kube-proxy-standin {" "    chain prerouting {" \
        "        type nat hook prerouting priority dstnat;" \
        "        ip daddr $VIP tcp dport 80 dnat to 10.244.$n.2:8080" "    }" "}" |
        lab_must lab_ns "$node" nft -f -
    echo 1 >"$LAB_RUN/standin.$node.ready"
    lab_spawn "$node" standin-health socat "TCP-LISTEN:$HEALTH_PORT,reuseaddr,fork" \
        SYSTEM:"$LAB_RUN/standin-health $LAB_RUN/standin.$node.ready"
    lab_must lab_wait_listen "$node" tcp "$HEALTH_PORT"
    echo 1 >"$LAB_RUN/standin.$node.synced"
    lab_spawn "$node" standin-healthz socat "TCP-LISTEN:10256,reuseaddr,fork" \
        SYSTEM:"$LAB_RUN/standin-health $LAB_RUN/standin.$node.synced"
    lab_must lab_wait_listen "$node" tcp 10256
}

# standin_director POLICY — the stand-in on the director (no local pod): Cluster, a DNAT of VIP:80
# to pod1 with masquerade; Local, a drop. Counted.
standin_director() {
    local verdict="dnat to 10.244.1.2:8080"
    [ "$1" = Local ] && verdict=drop
    lab_ns director nft delete table ip kube-proxy-standin 2>/dev/null || true
    printf '%s\n' "table ip kube-proxy-standin {" "    chain prerouting {" \
        "        type nat hook prerouting priority dstnat;" \
        "        ip daddr $VIP tcp dport 80 counter $verdict" "    }" "    chain postrouting {" \
        "        type nat hook postrouting priority srcnat;" \
        "        ip daddr 10.244.0.0/16 masquerade" "    }" "}" |
        lab_must lab_ns director nft -f -
}

# standin_director_hits — packets the director's stand-in rule took (0: IPVS got them all).
standin_director_hits() {
    lab_ns director nft list chain ip kube-proxy-standin prerouting | sed -n 's/.*counter packets \([0-9]*\).*/\1/p'
}

# director_targets — the real servers of VIP:80 the director's IPVS table sends new connections
# to (weight above 0), sorted addresses.
director_targets() {
    lab_ns director ipvsadm -Ln -t "$VIP:80" 2>/dev/null |
        awk '$1 == "->" && $2 ~ /:80$/ && $4 > 0 { sub(/:80$/, "", $2); print $2 }' | sort | paste -sd ' '
}

# logged_from POD ADDR — requests POD's web server logged from ADDR.
logged_from() { grep -cF "$2]:" "$LAB_RUN/log/$1.http-8080.log" || true; }

lab_step "the user-network NIC: 10.0.2.15, the host (emulator) at $LAB_KMOCK_HOST"
lab_kmock_nic

lab_step "the Service's VIP, from its status.loadBalancer.ingress (written by lvs-controller)"
service_vip() {
    lab_kmock_get "$SVC_PATH" | tr -d ' \n' >"$LAB_RUN/svc.json"
    sed -n 's/.*"ingress":\[{"ip":"\([0-9.]*\)","ipMode":"VIP"}\].*/\1/p' "$LAB_RUN/svc.json"
}
VIP=''
i=0
while [ -z "$VIP" ] && [ "$i" -lt 30 ]; do
    VIP=$(service_vip)
    [ -n "$VIP" ] || sleep 2
    i=$((i + 1))
done
[ -n "$VIP" ] || { cat "$LAB_RUN/svc.json"; lab_fail "Service shop/web got no ingress with ipMode VIP"; lab_finish; }
lab_say "Service shop/web: ingress $VIP (ipMode VIP)"
lab_check "the VIP is from the pool (10.100.0.100-199)" sh -c "echo $VIP | grep -qE '^10\.100\.0\.1[0-9][0-9]$'"

lab_step "nodes, pods and the kube-proxy stand-in on rs1 and rs2; agents in Kubernetes mode"
lab_topology 2
standin rs1 pod1 1
standin rs2 pod2 2
lab_must lab_ns director sysctl -qw net.ipv4.ip_forward=1
lab_must ip -n director route add 10.244.1.0/24 via "$LAB_RS1_IP"
lab_must ip -n director route add 10.244.2.0/24 via "$LAB_RS2_IP"
standin_director Cluster
# shellcheck disable=SC2086 # a list of namespaces
lab_kmock_routes director $LAB_SERVERS
for ns in director $LAB_SERVERS; do lab_kmock_agent "$ns"; done
start=$(lab_now_ms)
# Weight 0 until a node's agent reports the VIP configured (readiness gating), then 1.
both_serve() { [ "$(director_targets)" = "$LAB_RS1_IP $LAB_RS2_IP" ]; }
lab_wait 60 both_serve
lab_say "director serving through both nodes $(($(lab_now_ms) - start)) ms after the agents started:"
lab_ns director ipvsadm -Ln -t "$VIP:80"
lab_check_eq "real servers of $VIP:80 (the nodes' InternalIPs)" "$(director_targets)" "$LAB_RS1_IP $LAB_RS2_IP"

lab_step "Cluster: requests from the client to http://$VIP/"
lab_fast_loop client "$VIP" 80 20
lab_check_loop "TCP to $VIP:80" pod1 pod2
for pod in pod1 pod2; do
    lab_check_ge "$pod logged requests from the client's own address $LAB_CLIENT_IP" "$(logged_from "$pod" "$LAB_CLIENT_IP")" 1
    lab_check_eq "$pod logged requests from a node's address" \
        "$(($(logged_from "$pod" 10.244.1.1) + $(logged_from "$pod" 10.244.2.1) + $(logged_from "$pod" "$LAB_DIRECTOR_IP")))" 0
done
lab_check "the director checks kube-proxy's health on rs1 (:10256, Cluster)" \
    test -s "$LAB_RUN/standin.rs1.synced.answered"
lab_arp_probe client "$VIP"
lab_check_eq "MACs answering ARP for $VIP ($(lab_arp_owners))" "$LAB_ARP_MACS" "$LAB_DIRECTOR_MAC"
lab_check_eq "packets the director's kube-proxy stand-in took from IPVS" "$(standin_director_hits)" 0

lab_step "what the controller derived and reports: the VirtualServer, the Service's condition"
VS_PATH=/apis/lvs.operator.io/v1alpha1/namespaces/shop/virtualservers/svc-web-http
derived_ready() { lab_kmock_get "$VS_PATH" | tr -d ' \n' | grep -q '"ready":"2/2"'; }
lab_check "VirtualServer shop/svc-web-http (derived, in the API) reports ready 2/2" lab_wait 60 derived_ready
lab_kmock_get "$VS_PATH" | tr -d ' \n' | grep -o '"ownerReferences":\[[^]]*\]' | sed 's/^/    /'
echo
vip_ready() {
    lab_kmock_get "$SVC_PATH" | tr -d ' \n' | grep -o '{[^{}]*"lvs.operator.io/VIPReady"[^{}]*}' >"$LAB_RUN/vip-ready.json"
    grep -q '"status":"True"' "$LAB_RUN/vip-ready.json"
}
lab_check "Service shop/web: condition lvs.operator.io/VIPReady True" lab_wait 60 vip_ready
sed 's/^/    /' "$LAB_RUN/vip-ready.json"
echo

lab_step "externalTrafficPolicy: Local (healthCheckNodePort $HEALTH_PORT), endpoints on both nodes"
lab_must lab_kmock_patch "$SVC_PATH" "{\"spec\":{\"externalTrafficPolicy\":\"Local\",\"healthCheckNodePort\":$HEALTH_PORT}}"
standin_director Local
# The director's agent checks each node's health port (HTTP 200), as a cloud load balancer does.
lab_check "the director checks rs1's health port :$HEALTH_PORT" \
    lab_wait 30 test -s "$LAB_RUN/standin.rs1.ready.answered"
lab_check_eq "real servers of $VIP:80 under Local" "$(director_targets)" "$LAB_RS1_IP $LAB_RS2_IP"
lab_fast_loop client "$VIP" 80 10
lab_check_loop "TCP to $VIP:80 under Local" pod1 pod2

lab_step "pod2 ends under a request loop: not ready, rs2 drains; its endpoint terminating, then gone"
lab_bg_loop_start drain client tcp "$VIP" 80
lab_must lab_bg_loop_wait drain 10
# Not ready: kube-proxy's health port on rs2 answers 503 at once (no ready local endpoint), its
# DNAT stays while the pod still serves. The director's health check alone drains rs2.
echo 0 >"$LAB_RUN/standin.rs2.ready"
unready_at=$(lab_now_ms)
lab_check "rs2 drained by the failing health check" \
    lab_wait 40 sh -c "[ \"\$(/sbin/ip netns exec director ipvsadm -Ln -t $VIP:80 | awk '\$2 == \"$LAB_RS2_IP:80\" && \$4 > 0' | wc -l)\" = 0 ]"
lab_say "rs2 out of rotation $(($(lab_now_ms) - unready_at)) ms after its health port turned 503"
# The endpoint controller marks the endpoint terminating: the controller takes rs-2 out of the
# Service's real servers (Local: nodes with a ready endpoint only).
lab_must endpoints "$(endpoint 10.244.1.2 rs-1 true)" "$(endpoint 10.244.2.2 rs-2 false)"
lab_check "rs2 is no longer a real server of $VIP:80 on the director" \
    lab_wait 30 sh -c "! /sbin/ip netns exec director ipvsadm -Ln -t $VIP:80 | grep -q '$LAB_RS2_IP:80'"
lab_check "rs2 no longer holds the VIP (its node config dropped it)" \
    lab_wait 30 sh -c "! /sbin/ip -n rs2 addr show | grep -q ' $VIP/'"
sleep 1
# The pod is gone: its endpoint leaves the slice, kube-proxy drops the node's rule (Local, no
# local endpoint) and the web server stops.
lab_must endpoints "$(endpoint 10.244.1.2 rs-1 true)"
lab_must lab_ns rs2 nft delete table ip kube-proxy-standin
lab_kill pod2 http-8080
gone_at=$(lab_now_ms)
lab_must lab_bg_loop_wait drain 20 "$gone_at" 60
lab_bg_loop_stop drain
lab_check_eq "requests of the loop that failed" "$LAB_BG_FAILED" 0
lab_check_eq "answers from pod2 after it was gone" \
    "$(awk -v s="$gone_at" '$1 >= s && $3 == "pod2" { n++ } END { print n + 0 }' "$LAB_RUN/bg.drain.txt")" 0
lab_check_eq "real servers of $VIP:80 at the end" "$(director_targets)" "$LAB_RS1_IP"
lab_fast_loop client "$VIP" 80 10
lab_check_loop "TCP to $VIP:80 with rs-1's endpoint only" pod1
lab_check_eq "answers from pod2" "$(lab_loop_count pod2)" 0
lab_check_eq "packets the director's kube-proxy stand-in (Local: drop) took from IPVS" "$(standin_director_hits)" 0

for ns in director $LAB_SERVERS; do lab_check "$ns: agent running" lab_running "$ns" agent; done
lab_finish
