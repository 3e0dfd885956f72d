# e2e/lab/lib/kernel-tests.sh — runs the workspace's privileged Rust tests (marked
# #[ignore = "needs the lab kernel"]) found in /opt/lvs/tests, each test alone in a fresh network
# namespace, with LVS_LAB_KERNEL=1 set, printing cargo-style lines.

# lab_seconds_since MS — seconds (two decimals) since the lab_now_ms reading MS.
lab_seconds_since() { awk -v a="$1" -v b="$(lab_now_ms)" 'BEGIN { printf "%.2f", (b - a) / 1000 }'; }

# lab_run_kernel_tests [FILTER] [TIMEOUT] — returns 0 when every selected test passed, 1 when
# one failed or FILTER matched none, 77 when there is nothing to run (no test binaries, or
# none holds an ignored test). Every ignored test counts as a lab test: the workspace marks
# only lab tests #[ignore] (libtest's listing does not show the reason).
lab_run_kernel_tests() {
    local filter=${1:-} limit=${2:-120} bin name names n=0 passed=0 failed=0 rc out start
    local failures="$LAB_RUN/kernel-test-failures"
    : >"$failures"
    : >"$LAB_RUN/kernel-test-failed-names"
    set -- /opt/lvs/tests/*
    [ -e "$1" ] || { echo "lab: no test binaries in /opt/lvs/tests (set LAB_TEST_BINARIES)"; return 77; }
    start=$(lab_now_ms)
    lab_must lab_modprobe ip_vs veth bridge dummy
    for bin in "$@"; do
        echo "     Running ${bin##*/} in the lab VM (each test in its own network namespace)"
        if ! "$bin" --list --ignored --format terse >"$LAB_RUN/list.out" 2>&1; then
            echo "error: cannot list the tests of $bin: $(tail -n 5 "$LAB_RUN/list.out")"
            echo "    ${bin##*/} (listing its tests)" >>"$LAB_RUN/kernel-test-failed-names"
            failed=$((failed + 1))
            continue
        fi
        names=$(sed -n 's/: test$//p' "$LAB_RUN/list.out" | while read -r name; do
            case $name in *"$filter"*) echo "$name" ;; esac
        done)
        echo
        echo "running $(echo "$names" | grep -c .) tests"
        for name in $names; do
            n=$((n + 1))
            if ! ip netns add "kt$n" || ! ip -n "kt$n" link set lo up; then
                echo "error: cannot create network namespace kt$n"
                return 1
            fi
            out=$(timeout -s KILL "$limit" /sbin/ip netns exec "kt$n" env LVS_LAB_KERNEL=1 RUST_BACKTRACE=1 \
                "$bin" --ignored --exact "$name" --test-threads=1 2>&1)
            rc=$?
            if [ $rc -eq 0 ] && echo "$out" | grep -q 'test result: ok. 1 passed'; then
                echo "test $name ... ok"
                passed=$((passed + 1))
            else
                echo "test $name ... FAILED"
                failed=$((failed + 1))
                [ $rc -eq 137 ] && out="$out
(killed after ${limit}s)"
                # indented, so the test binary's own "test result:" line is not taken for ours
                printf -- '---- %s stdout ----\n%s\n\n' "$name" "$(echo "$out" | sed 's/^/    /')" >>"$failures"
                echo "    $name" >>"$LAB_RUN/kernel-test-failed-names"
            fi
            ip netns del "kt$n"
        done
    done
    echo
    if [ "$failed" -gt 0 ]; then
        echo "failures:"
        echo
        cat "$failures"
        echo "failures:"
        cat "$LAB_RUN/kernel-test-failed-names"
        echo
        echo "test result: FAILED. $passed passed; $failed failed; 0 ignored; 0 measured; finished in $(lab_seconds_since "$start")s"
        return 1
    fi
    if [ "$n" -eq 0 ]; then
        # no ignored test at all is "nothing to run"; a filter that matches none is a mistake
        [ -n "$filter" ] && { echo "error: no kernel test matched the filter '$filter'"; return 1; }
        echo "lab: the test binaries hold no ignored (lab kernel) tests"
        return 77
    fi
    echo "test result: ok. $passed passed; 0 failed; 0 ignored; 0 measured; finished in $(lab_seconds_since "$start")s"
}
