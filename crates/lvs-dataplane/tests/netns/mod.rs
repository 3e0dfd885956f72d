//! Host tests that change network state run in a private network namespace of their own: the
//! test re-runs itself under `unshare -n`, so the host's own addresses and ruleset are never
//! touched. Needs root and `unshare` (util-linux); fails (never skips) when that is impossible.

/// True inside the private namespace: run the test's body. Outside, runs this test binary's
/// test `name` again inside a new network namespace, asserts that it passed, and returns false.
pub fn in_private_network(name: &str) -> bool {
    if std::env::var_os("LVS_DATAPLANE_TEST_NETNS").is_some() {
        return true;
    }
    let output = std::process::Command::new("unshare")
        .args([
            "-n",
            "sh",
            "-c",
            "exec \"$0\" --exact \"$1\" --nocapture --test-threads=1",
        ])
        .arg(std::env::current_exe().expect("the test binary's own path"))
        .arg(name)
        .env("LVS_DATAPLANE_TEST_NETNS", "1")
        .output()
        .expect("cannot run unshare (util-linux) to make a private network namespace");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{name} in a private network namespace: {}\n{stdout}\n{stderr}",
        output.status
    );
    false
}
