#!/bin/sh
# bench-dataplane — 1,000 services x 10 destinations from empty: ipvsadm -R vs IpvsHandle::apply_all vs lvs-dataplane (plan+apply); last line ratio=ours/ipvsadm (LAB_TEST_BINARIES, release build)
# lab-timeout: 600
#
# Runs the ignored test ipvs_bulk_apply_all_against_ipvsadm_restore (crates/lvs-dataplane/tests/
# ipvs_kernel_bulk.rs) in a fresh namespace, with its output shown: in the same VM boot it times
# `ipvsadm -R` of the bench-ipvsadm rule set and apply_all of the same rules, checks both leave
# the same table, and prints ipvsadm_restore_ms, ipvs_apply_all_ms and ipvs_apply_all_speedup.
# The agent ships optimized, so the speed check wants an optimized test binary:
#   LAB_TEST_BINARIES="$(cargo test --release -p lvs-dataplane --test ipvs_kernel_bulk --no-run \
#       --message-format=json | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p')" \
#       e2e/lab/run bench-dataplane
# A benchmark: it prints figures (target ratio ≤ 0.5) and checks only correctness and that the
# build is optimized (debug figures would mislead), never a time.
. /lab/lib/lab.sh
set -- /opt/lvs/tests/ipvs_kernel_bulk-*
[ -e "$1" ] || lab_fail "no ipvs_kernel_bulk test binary in /opt/lvs/tests (set LAB_TEST_BINARIES, see above)"
[ -e "$1" ] || lab_finish
lab_must lab_modprobe ip_vs dummy
lab_must ip netns add bulk
lab_must ip -n bulk link set lo up
out=$(lab_ns bulk env LVS_LAB_KERNEL=1 "$1" --ignored --exact ipvs_bulk_apply_all_against_ipvsadm_restore \
    --nocapture --test-threads=1 2>&1)
rc=$?
echo "$out"
lab_check_eq "the bulk test passed (same table from apply_all and ipvsadm -R)" "$rc" 0
lab_check_eq "the test binary is an optimized build (cargo test --release)" \
    "$(echo "$out" | sed -n 's/^ipvs_bulk_optimized=//p')" 1
ratio=$(echo "$out" | sed -n 's/^ratio=//p')
lab_check "the benchmark printed its ratio" test -n "$ratio"
echo "ratio=${ratio:-none}"
lab_finish
