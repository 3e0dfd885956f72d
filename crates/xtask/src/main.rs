//! `cargo xtask <command>`: `generate` (alias `crdgen`) writes every generated file — the CRDs
//! in `crds/` and `charts/lvs-operator/crds/`, then `deploy/` rendered from the chart — and
//! `check` fails when any of them drifted.

use std::process::ExitCode;

fn main() -> anyhow::Result<ExitCode> {
    let root = xtask::repository_root();
    match std::env::args().nth(1).as_deref() {
        Some("crdgen") | Some("generate") => {
            for path in xtask::write_all(&root)? {
                println!("wrote {}", path.display());
            }
            xtask::render_deploy(&root, false)?;
            Ok(ExitCode::SUCCESS)
        }
        Some("check") => {
            let drifted = xtask::drifted(&root)?;
            for path in &drifted {
                eprintln!("{} is out of date: run `cargo xtask generate`", path.display());
            }
            let deploy_current = xtask::render_deploy(&root, true)?;
            Ok(if drifted.is_empty() && deploy_current {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        _ => {
            eprintln!("usage: cargo xtask generate|crdgen|check");
            Ok(ExitCode::from(2))
        }
    }
}
