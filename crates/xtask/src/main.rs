//! `cargo xtask <command>`: `crdgen` writes the generated files, `check` fails when they drifted.

use std::process::ExitCode;

fn main() -> anyhow::Result<ExitCode> {
    let root = xtask::repository_root();
    match std::env::args().nth(1).as_deref() {
        Some("crdgen") | Some("generate") => {
            for path in xtask::write_all(&root)? {
                println!("wrote {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Some("check") => {
            let drifted = xtask::drifted(&root)?;
            for path in &drifted {
                eprintln!("{} is out of date: run `cargo xtask crdgen`", path.display());
            }
            Ok(if drifted.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        _ => {
            eprintln!("usage: cargo xtask crdgen|check");
            Ok(ExitCode::from(2))
        }
    }
}
