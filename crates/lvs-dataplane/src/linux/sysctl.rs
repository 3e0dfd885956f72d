//! Sysctls through `/proc/sys` directly. Names are slash-separated paths so interface names with
//! dots (`eth0.100`) stay one path component — the `sysctl` crate turns every dot into a slash.

use std::path::{Path, PathBuf};

use crate::dataplane::{DataplaneError, Object, Operation};

/// The path of `name` below `root` (normally `/proc/sys`), refusing anything that could escape
/// (`operation`: what the path is for).
pub fn path_of(root: &Path, name: &str, operation: Operation) -> Result<PathBuf, DataplaneError> {
    let valid = !name.is_empty()
        && name
            .split('/')
            .all(|component| !component.is_empty() && component != "." && component != "..")
        && !name.contains('\0');
    if !valid {
        return Err(DataplaneError::reason(
            operation,
            Object::Other(format!("sysctl {name:?}")),
            "is not a valid sysctl path",
        ));
    }
    Ok(root.join(name))
}

/// Reads a sysctl's value (trimmed).
pub async fn read(root: &Path, name: &str) -> Result<String, DataplaneError> {
    let path = path_of(root, name, Operation::Read)?;
    tokio::fs::read_to_string(&path)
        .await
        .map(|value| value.trim().to_owned())
        .map_err(|error| io_error(name, Operation::Read, &error))
}

/// The names in a sysctl directory (e.g. the interfaces under `net/ipv6/conf`), sorted.
pub async fn children(root: &Path, directory: &str) -> Result<Vec<String>, DataplaneError> {
    let path = path_of(root, directory, Operation::Read)?;
    let mut entries = tokio::fs::read_dir(&path)
        .await
        .map_err(|error| io_error(directory, Operation::Read, &error))?;
    let mut names = Vec::new();
    while let Some(entry) = entries
        .next_entry()
        .await
        .map_err(|error| io_error(directory, Operation::Read, &error))?
    {
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// Writes a sysctl's value and reads it back to verify the kernel took it.
pub async fn write(root: &Path, name: &str, value: &str) -> Result<(), DataplaneError> {
    let path = path_of(root, name, Operation::Update)?;
    tokio::fs::write(&path, format!("{value}\n"))
        .await
        .map_err(|error| io_error(name, Operation::Update, &error))?;
    let now = read(root, name).await?;
    if now != value {
        return Err(DataplaneError::reason(
            Operation::Update,
            Object::Sysctl(name.to_owned()),
            format!("wrote {value} but it reads back as {now}"),
        ));
    }
    Ok(())
}

fn io_error(name: &str, operation: Operation, error: &std::io::Error) -> DataplaneError {
    let reason = match error.kind() {
        std::io::ErrorKind::NotFound => {
            "does not exist here (is the interface present, the module loaded?)".to_owned()
        }
        _ => error.to_string(),
    };
    DataplaneError::Failed {
        operation,
        object: Object::Sysctl(name.to_owned()),
        reason,
        errno: error.raw_os_error(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dotted_interface_names_stay_one_component_and_values_round_trip() {
        let root = std::env::temp_dir().join(format!("lvs-sysctl-{}", std::process::id()));
        let name = "net/ipv4/conf/eth0.100/arp_ignore";
        std::fs::create_dir_all(root.join("net/ipv4/conf/eth0.100")).unwrap();
        std::fs::write(root.join(name), "0\n").unwrap();
        assert_eq!(read(&root, name).await.unwrap(), "0");
        assert_eq!(children(&root, "net/ipv4/conf").await.unwrap(), ["eth0.100"]);
        write(&root, name, "1").await.unwrap();
        assert_eq!(std::fs::read_to_string(root.join(name)).unwrap(), "1\n");
        let missing = read(&root, "net/ipv4/vs/conntrack").await.unwrap_err();
        assert_eq!(missing.errno(), Some(2), "ENOENT kept: {missing:?}");
        assert_eq!(
            missing.object(),
            Some(Object::Sysctl("net/ipv4/vs/conntrack".into()))
        );
        let missing = missing.to_string();
        assert!(
            missing.contains("sysctl net.ipv4.vs.conntrack: does not exist here"),
            "{missing}"
        );
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn paths_cannot_escape_the_root() {
        for bad in ["", "../etc/passwd", "net//ipv4", "net/./x", "/net/ipv4"] {
            assert!(
                path_of(Path::new("/proc/sys"), bad, Operation::Read).is_err(),
                "{bad:?}"
            );
        }
    }
}
