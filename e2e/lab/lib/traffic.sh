# e2e/lab/lib/traffic.sh — servers that answer with their own name, clients that record who
# answered, and an ARP probe that reports every MAC answering for an address.
# Clients use busybox nc (static busybox wget crashes under `ip netns exec`) and socat for UDP.

# lab_http_server NS [PORT] [NAME] — busybox httpd in NS on PORT (default 80, all addresses,
# IPv4 and IPv6) serving "NAME\n" (default NS) at /. Process name: http-PORT; its log
# (/run/lab/log/NS.http-PORT.log) has a line per request naming the peer address.
lab_http_server() {
    local ns=$1 port=${2:-80} name=${3:-$1} dir
    dir=$LAB_RUN/www/$ns-$port
    mkdir -p "$dir"
    echo "$name" >"$dir/index.html"
    lab_spawn "$ns" "http-$port" httpd -f -v -p "$port" -h "$dir"
    lab_wait_listen "$ns" tcp "$port" || { lab_log_tail "$ns" "http-$port"; return 1; }
}

# lab_udp_server NS PORT [BIND] [NAME] — socat in NS answering each datagram with "NAME\n".
# BIND is the address replies must come from: for direct routing and tunnelling, the VIP
# (an unbound socket would answer from the real server's own address and the client would drop
# it). An IPv6 BIND gives an IPv6 server. Process name: udp-PORT[-BIND].
lab_udp_server() {
    local ns=$1 port=$2 bind=${3:-} name=${4:-$1} addr pname=udp-$2${3:+-$3}
    case $bind in
    "") addr=UDP4-RECVFROM:$port ;;
    *:*) addr="UDP6-RECVFROM:$port,bind=[$bind]" ;;
    *) addr="UDP4-RECVFROM:$port,bind=$bind" ;;
    esac
    lab_spawn "$ns" "$pname" socat "$addr,reuseaddr,fork" SYSTEM:"echo $name"
    lab_wait_listen "$ns" udp "$port" || { lab_log_tail "$ns" "$pname"; return 1; }
}

# lab_request NS PROTO ADDR PORT — one request from NS; prints the answering server's name.
# tcp: HTTP/1.0 GET / (3 s timeout); udp: one datagram (2 s timeout). Fails on no answer.
lab_request() {
    local ns=$1 proto=$2 addr=$3 port=$4 answer peer=$3
    case $addr in *:*) peer="[$addr]" ;; esac
    if [ "$proto" = tcp ]; then
        answer=$(printf 'GET / HTTP/1.0\r\n\r\n' | /sbin/ip netns exec "$ns" nc -w 3 "$addr" "$port" 2>/dev/null |
            tr -d '\r' | awk 'body { print } /^$/ { body = 1 }' | tail -n 1)
    else
        answer=$(echo ping | /sbin/ip netns exec "$ns" socat -T 2 - "UDP:$peer:$port" 2>/dev/null | tail -n 1)
    fi
    [ -n "$answer" ] && echo "$answer"
}

# lab_client_loop NS PROTO ADDR PORT COUNT — COUNT requests, one after the other. Prints one
# line per request, then a summary. Sets LAB_LOOP_FAILED (requests without an answer) and
# LAB_LOOP_SUMMARY ("rs1=10 rs2=10"); lab_loop_count NAME gives one server's count.
lab_client_loop() {
    local ns=$1 proto=$2 addr=$3 port=$4 count=$5 i=0 answer
    : >"$LAB_RUN/loop.txt"
    while [ "$i" -lt "$count" ]; do
        i=$((i + 1))
        answer=$(lab_request "$ns" "$proto" "$addr" "$port") || answer=FAIL
        echo "$answer" >>"$LAB_RUN/loop.txt"
    done
    lab_loop_results "$count $proto requests $ns -> $addr:$port" "; sequence: $(tr '\n' ' ' <"$LAB_RUN/loop.txt")"
}

# lab_loop_results WHAT [MORE] — sets LAB_LOOP_FAILED and LAB_LOOP_SUMMARY from the answers in
# $LAB_RUN/loop.txt (one a line, FAIL for none) and says them.
lab_loop_results() {
    LAB_LOOP_FAILED=$(grep -c '^FAIL$' "$LAB_RUN/loop.txt")
    LAB_LOOP_SUMMARY=$(grep -v '^FAIL$' "$LAB_RUN/loop.txt" | sort | uniq -c |
        awk '{ printf "%s%s=%s", sep, $2, $1; sep = " " }')
    lab_say "$1: answers ${LAB_LOOP_SUMMARY:-none}; failed $LAB_LOOP_FAILED${2:-}"
}
lab_loop_count() { grep -c "^$1\$" "$LAB_RUN/loop.txt"; }

# lab_check_loop DESCRIPTION SERVER... — checks on the last client loop: no request failed
# and every SERVER answered at least once.
lab_check_loop() {
    local desc=$1 rs
    shift
    lab_check_eq "$desc: requests without an answer" "$LAB_LOOP_FAILED" 0
    for rs in "$@"; do
        lab_check_ge "$desc: answers from $rs (all answers: ${LAB_LOOP_SUMMARY:-none})" "$(lab_loop_count "$rs")" 1
    done
}

# lab_arp_probe NS ADDR [COUNT] — broadcast COUNT ARP requests (default 3) for ADDR from NS's
# eth0 and collect every reply. Prints the distinct MACs that answered, one a line, with the
# owning namespace; sets LAB_ARP_MACS (space-separated) and LAB_ARP_COUNT.
lab_arp_probe() {
    local ns=$1 addr=$2 count=${3:-3}
    /sbin/ip netns exec "$ns" arping -b -c "$count" -w $((count + 1)) -I eth0 "$addr" >"$LAB_RUN/arping.txt" 2>&1
    lab_probe_macs 's/.*reply from .* \[\([0-9a-fA-F:]*\)\].*/\1/p' "$LAB_RUN/arping.txt"
    lab_say "ARP probe $ns -> $addr: $LAB_ARP_COUNT MAC(s) answered: $(lab_arp_owners)"
}

# lab_probe_macs SED FILE — LAB_ARP_MACS (the distinct MACs SED prints from FILE, lower case,
# space-separated) and LAB_ARP_COUNT (how many).
lab_probe_macs() {
    local mac
    LAB_ARP_MACS=$(sed -n "$1" "$2" | tr 'A-F' 'a-f' | sort -u | tr '\n' ' ')
    LAB_ARP_MACS=${LAB_ARP_MACS% }
    LAB_ARP_COUNT=0
    for mac in $LAB_ARP_MACS; do
        LAB_ARP_COUNT=$((LAB_ARP_COUNT + 1))
    done
}
# lab_arp_owners — "mac (ns)" for each MAC of the last probe.
lab_arp_owners() {
    local mac out=""
    for mac in $LAB_ARP_MACS; do out="$out${out:+, }$mac ($(lab_mac_owner "$mac"))"; done
    echo "${out:-none}"
}

# lab_ndp_probe NS ADDR — neighbour solicitations for the IPv6 ADDR from NS's eth0 (ndisc6,
# 3 tries, waiting for every answer). Prints the distinct MACs that answered with their owning
# namespace; sets LAB_ARP_MACS and LAB_ARP_COUNT as lab_arp_probe does (lab_arp_owners names
# them). Raw ICMPv6: the prober's own neighbour cache is not changed.
lab_ndp_probe() {
    local ns=$1 addr=$2
    /sbin/ip netns exec "$ns" ndisc6 -m -n -r 3 -w 1000 "$addr" eth0 >"$LAB_RUN/ndisc6.txt" 2>&1
    lab_probe_macs 's/.*[Ll]ink-layer address: *\([0-9a-fA-F:]*\).*/\1/p' "$LAB_RUN/ndisc6.txt"
    lab_say "NDP probe $ns -> $addr: $LAB_ARP_COUNT MAC(s) answered: $(lab_arp_owners)"
}

# lab_neigh_probe NS ADDR — lab_arp_probe, or lab_ndp_probe for an IPv6 ADDR.
lab_neigh_probe() {
    case $2 in
    *:*) lab_ndp_probe "$1" "$2" ;;
    *) lab_arp_probe "$1" "$2" ;;
    esac
}

# LAB_V6 — sed expression turning the lab's IPv4 addresses (10.100.0.N) into its IPv6 ones
# (fd00:100::N), for running an IPv4 manifest over IPv6.
export LAB_V6='s/10\.100\.0\.\([0-9][0-9]*\)/fd00:100::\1/g'

# lab_neigh_flush NS — empty NS's neighbour caches (both families), as on a client that has
# never talked to the VIP.
lab_neigh_flush() { /sbin/ip -n "$1" neigh flush all; }

# lab_tls_server NS PORT [NAME] — an HTTPS server in NS on PORT (socat, IPv4 and IPv6, a
# self-signed certificate made once per VM) answering every request with 200 and "NAME\n"
# (default NS). Process name: https-PORT.
lab_tls_server() {
    local ns=$1 port=$2 name=${3:-$1} pem=$LAB_RUN/lab-tls.pem script=$LAB_RUN/www/https-$1-$2.sh
    if [ ! -s "$pem" ]; then
        # No openssl.cnf in the image: -config /dev/null. An EC key: quick under emulation.
        openssl req -config /dev/null -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -days 2 -subj /CN=lab.internal -keyout "$pem.key" -out "$pem.crt" >"$pem.log" 2>&1 ||
            { cat "$pem.log"; return 1; }
        cat "$pem.key" "$pem.crt" >"$pem"
    fi
    # The response in a script: socat would take the backslashes of an inline one as its own.
    mkdir -p "$LAB_RUN/www"
    printf '%s\n' "head -n 1 >/dev/null" \
        "printf 'HTTP/1.0 200 OK\\r\\nContent-Length: $((${#name} + 1))\\r\\n\\r\\n%s\\n' '$name'" >"$script"
    lab_spawn "$ns" "https-$port" socat "OPENSSL-LISTEN:$port,pf=ip6,ipv6only=0,cert=$pem,verify=0,reuseaddr,fork" \
        SYSTEM:"sh $script"
    lab_wait_listen "$ns" tcp "$port" || { lab_log_tail "$ns" "https-$port"; return 1; }
}

# lab_tls_loop NS ADDR PORT COUNT — COUNT HTTPS requests from NS (certificate not checked); the
# same results as lab_fast_loop.
lab_tls_loop() {
    local ns=$1 addr=$2 port=$3 count=$4 peer=$2
    case $addr in *:*) peer="[$addr]" ;; esac
    # shellcheck disable=SC2016 # the script runs in the namespace, with its own arguments
    lab_ns "$ns" sh -c '
        i=0
        while [ "$i" -lt "$3" ]; do
            i=$((i + 1))
            answer=$(printf "GET / HTTP/1.0\r\n\r\n" | socat -T 3 - "OPENSSL:$1:$2,verify=0" 2>/dev/null | tr -d "\r" | tail -n 1)
            echo "${answer:-FAIL}"
        done' sh "$peer" "$port" "$count" >"$LAB_RUN/loop.txt"
    lab_loop_results "$count https requests $ns -> $addr:$port"
}
