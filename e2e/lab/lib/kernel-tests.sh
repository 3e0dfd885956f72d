# e2e/lab/lib/kernel-tests.sh — runs the workspace's privileged Rust tests (marked
# #[ignore = "needs the lab kernel"]) found in /opt/lvs/tests, each test alone in a fresh network
# namespace, with LVS_LAB_KERNEL=1 set, printing cargo-style lines.

# lab_run_kernel_tests [FILTER] [TIMEOUT] — returns 0 when every selected test passed, 1 when
# one failed (or none ran while binaries exist), 77 when there are no test binaries at all.
lab_run_kernel_tests() {
    local filter=${1:-} limit=${2:-120} bin name names n=0 passed=0 failed=0 rc out start
    local failures="$LAB_RUN/kernel-test-failures"
    : >"$failures"
    set -- /opt/lvs/tests/*
    [ -e "$1" ] || { echo "lab: no test binaries in /opt/lvs/tests (set LAB_TEST_BINARIES)"; return 77; }
    start=$(lab_now_ms)
    lab_must lab_modprobe ip_vs veth bridge dummy
    for bin in "$@"; do
        echo "     Running ${bin##*/} in the lab VM (each test in its own network namespace)"
        names=$("$bin" --list --ignored --format terse 2>"$LAB_RUN/list.err" | sed -n 's/: test$//p') || {
            echo "error: cannot list the tests of $bin: $(cat "$LAB_RUN/list.err")"
            failed=$((failed + 1))
            continue
        }
        for name in $names; do
            case $name in *"$filter"*) ;; *) continue ;; esac
            n=$((n + 1))
            ip netns add "kt$n" && ip -n "kt$n" link set lo up || { echo "error: netns kt$n"; return 1; }
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
                printf -- '---- %s stdout ----\n%s\n\n' "$name" "$out" >>"$failures"
            fi
            ip netns del "kt$n"
        done
    done
    echo
    if [ "$failed" -gt 0 ]; then
        echo "failures:"
        echo
        cat "$failures"
        echo "test result: FAILED. $passed passed; $failed failed; 0 ignored; 0 measured;" \
            "finished in $((($(lab_now_ms) - start) / 1000))s"
        return 1
    fi
    echo "test result: ok. $passed passed; 0 failed; 0 ignored; 0 measured; finished in $((($(lab_now_ms) - start) / 1000))s"
    [ "$n" -gt 0 ] || { echo "error: no kernel test matched filter '$filter'"; return 1; }
}
