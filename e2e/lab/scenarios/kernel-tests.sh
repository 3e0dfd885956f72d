#!/bin/sh
# kernel-tests — the workspace's #[ignore = "needs the lab kernel"] tests, each in a fresh netns (LAB_TEST_BINARIES)
# lab-timeout: 1200
#
# Test executables come from the host's LAB_TEST_BINARIES (copied to /opt/lvs/tests);
# LAB_TEST_FILTER (lab.filter) selects tests by substring. Skipped when no binary was given.
. /lab/lib/lab.sh
lab_run_kernel_tests "${LAB_FILTER:-}" 300
