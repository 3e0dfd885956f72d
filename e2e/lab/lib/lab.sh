# e2e/lab/lib/lab.sh — the one file a scenario sources (". /lab/lib/lab.sh"): loads every
# helper of the VM lab. Runs inside the VM under busybox ash; POSIX sh plus `local`.
for _lab_lib in common topology process traffic roles state kernel-tests agent failover kmock; do
    # shellcheck disable=SC1090 # every helper file, by name
    . "/lab/lib/$_lab_lib.sh"
done
unset _lab_lib
