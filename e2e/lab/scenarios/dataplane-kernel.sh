#!/bin/sh
# dataplane-kernel — lvs-dataplane's IPVS kernel tests (round trips witnessed by ipvsadm, errors, single writes, sync daemons), each in a fresh netns (LAB_TEST_BINARIES)
# lab-timeout: 900
#
# The `ipvs_*` subset of the workspace's lab tests (crates/lvs-dataplane/tests/ipvs_kernel*.rs):
#   LAB_TEST_BINARIES="$(cargo test -p lvs-dataplane --no-run --message-format=json | …)" \
#       e2e/lab/run dataplane-kernel
# A missing binary is a failure here, never a skip.
. /lab/lib/lab.sh
set -- /opt/lvs/tests/ipvs_kernel*
[ -e "$1" ] || lab_fail "no ipvs_kernel test binaries in /opt/lvs/tests (set LAB_TEST_BINARIES)"
[ -e "$1" ] || lab_finish
lab_run_kernel_tests ipvs 300
