//! Reading manifests: multi-document YAML text → typed AddressPools, VirtualServers, RealServers,
//! Nodes and Namespaces,
//! each remembered with the file it came from. Problems (syntax, unknown kinds, wrong types,
//! unknown fields, duplicates) name the file, the object and the field path. Reading files is
//! the caller's job; this module only sees text.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::{Namespace, Node};
use lvs_api::{AddressPool, RealServer, VirtualServer};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::object::{Kind, ObjectKey, namespace_of};
use crate::problem::Severity;

const API_VERSION: &str = "lvs.operator.io/v1alpha1";

/// Objects read from manifests.
#[derive(Debug, Clone, Default)]
pub struct Manifests {
    /// VirtualServers, in reading order.
    pub virtual_servers: Vec<VirtualServer>,
    /// RealServers, in reading order.
    pub real_servers: Vec<RealServer>,
    /// Nodes, in reading order.
    pub nodes: Vec<Node>,
    /// AddressPools, in reading order.
    pub pools: Vec<AddressPool>,
    /// Namespaces (their labels), in reading order.
    pub namespaces: Vec<Namespace>,
    /// The file each object came from.
    pub sources: BTreeMap<ObjectKey, String>,
}

/// A problem found while reading a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestProblem {
    /// The file.
    pub source: String,
    /// The object, when it could be identified.
    pub object: Option<ObjectKey>,
    /// Field path, or empty.
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// Error (the object is skipped) or warning.
    pub severity: Severity,
}

impl fmt::Display for ManifestProblem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}: ", self.source)?;
        if let Some(object) = &self.object {
            write!(formatter, "{object}: ")?;
        }
        if self.severity == Severity::Warning {
            write!(formatter, "warning: ")?;
        }
        if !self.field.is_empty() {
            write!(formatter, "{}: ", self.field)?;
        }
        write!(formatter, "{}", self.message)
    }
}

impl Manifests {
    /// The build input for these objects (standalone mode: no readiness gating).
    pub fn build_input<'a>(&'a self, settings: &'a crate::build::ClusterSettings) -> crate::BuildInput<'a> {
        crate::BuildInput {
            pools: (&self.pools).into(),
            namespaces: (&self.namespaces).into(),
            settings,
            virtual_servers: (&self.virtual_servers).into(),
            real_servers: (&self.real_servers).into(),
            nodes: (&self.nodes).into(),
            configured_vips: None,
        }
    }

    /// Reads every document of `text` (from the file `source`) into `self`. Objects with
    /// problems are skipped; the problems are returned.
    pub fn read(&mut self, source: &str, text: &str) -> Vec<ManifestProblem> {
        let problem = |object: Option<ObjectKey>, field: &str, message: String, severity| ManifestProblem {
            source: source.to_owned(),
            object,
            field: field.to_owned(),
            message,
            severity,
        };
        let documents: Vec<Value> = match serde_saphyr::from_multiple(text) {
            Ok(documents) => documents,
            Err(error) => {
                return vec![problem(
                    None,
                    "",
                    format!("not valid YAML: {}", one_line(&error.to_string())),
                    Severity::Error,
                )];
            }
        };
        let mut problems = Vec::new();
        for (index, document) in documents.into_iter().enumerate() {
            let documents = match document {
                Value::Null => continue,
                Value::Object(ref map) if map.get("kind").and_then(Value::as_str) == Some("List") => map
                    .get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
                other => vec![other],
            };
            for document in documents {
                if let Err(found) = self.read_object(source, index, document) {
                    problems.extend(found.into_iter().map(|(object, field, message, severity)| {
                        problem(object, &field, message, severity)
                    }));
                }
            }
        }
        problems
    }

    fn read_object(&mut self, source: &str, index: usize, document: Value) -> Result<(), Vec<Finding>> {
        let Value::Object(map) = &document else {
            return Err(vec![(
                None,
                String::new(),
                format!("document {} is not a mapping", index + 1),
                Severity::Error,
            )]);
        };
        let text = |key: &str| {
            map.get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let (api_version, kind_name) = (text("apiVersion"), text("kind"));
        let metadata = map.get("metadata");
        let name = metadata
            .and_then(|metadata| metadata.get("name"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let namespace = metadata
            .and_then(|metadata| metadata.get("namespace"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let kind = match (api_version.as_str(), kind_name.as_str()) {
            (API_VERSION, "VirtualServer") => Kind::VirtualServer,
            (API_VERSION, "RealServer") => Kind::RealServer,
            (API_VERSION, "AddressPool") => Kind::AddressPool,
            ("v1", "Node") => Kind::Node,
            ("v1", "Namespace") => Kind::Namespace,
            (_, "VirtualServer" | "RealServer" | "AddressPool") => {
                return Err(vec![(
                    None,
                    "apiVersion".to_owned(),
                    format!("{kind_name} {name:?} has apiVersion {api_version:?}; expected {API_VERSION}"),
                    Severity::Error,
                )]);
            }
            _ => {
                let what = if kind_name.is_empty() {
                    "a document without kind".to_owned()
                } else {
                    format!("{api_version} {kind_name} {name:?}")
                };
                return Err(vec![(
                    None,
                    String::new(),
                    format!("ignored {what}: not an lvs-operator object, Node or Namespace"),
                    Severity::Warning,
                )]);
            }
        };
        let key = match kind {
            Kind::Node | Kind::AddressPool | Kind::Namespace => ObjectKey::cluster(kind, name),
            Kind::VirtualServer | Kind::RealServer => {
                ObjectKey::new(kind, namespace_of(namespace.as_ref()), name)
            }
        };
        if name.is_empty() {
            let message = match metadata.and_then(|metadata| metadata.get("name")) {
                None | Some(Value::Null) => "is required".to_owned(),
                Some(other) => format!(
                    "must be a string, got {other} (YAML reads unquoted on/off/yes/no as booleans: quote the name)"
                ),
            };
            return Err(vec![(
                Some(key),
                "metadata.name".to_owned(),
                message,
                Severity::Error,
            )]);
        }
        if let Some(first) = self.sources.get(&key) {
            return Err(vec![(
                Some(key),
                String::new(),
                format!("is defined twice; first in {first}"),
                Severity::Error,
            )]);
        }
        let result = match kind {
            Kind::VirtualServer => {
                typed::<VirtualServer>(&document, &key).map(|object| self.virtual_servers.push(object))
            }
            Kind::RealServer => {
                typed::<RealServer>(&document, &key).map(|object| self.real_servers.push(object))
            }
            Kind::Node => typed::<Node>(&document, &key).map(|object| self.nodes.push(object)),
            Kind::AddressPool => typed::<AddressPool>(&document, &key).map(|object| self.pools.push(object)),
            Kind::Namespace => typed::<Namespace>(&document, &key).map(|object| self.namespaces.push(object)),
        };
        result?;
        self.sources.insert(key, source.to_owned());
        Ok(())
    }
}

type Finding = (Option<ObjectKey>, String, String, Severity);

/// Deserializes `document` into `T`, reporting the failing field path and unknown spec fields
/// (as `kubectl apply` with strict field validation would).
fn typed<T: DeserializeOwned + serde::Serialize>(
    document: &Value,
    key: &ObjectKey,
) -> Result<T, Vec<Finding>> {
    let object: T = serde_path_to_error::deserialize(document).map_err(|error| {
        let path = error.path().to_string();
        let field = if path == "." { String::new() } else { path };
        vec![(
            Some(key.clone()),
            field,
            one_line(&error.into_inner().to_string()),
            Severity::Error,
        )]
    })?;
    if matches!(key.kind, Kind::Node | Kind::Namespace) {
        return Ok(object);
    }
    let mut unknown = Vec::new();
    if let (Some(original), Ok(round_trip)) = (document.get("spec"), serde_json::to_value(&object)) {
        unknown_fields(
            original,
            round_trip.get("spec").unwrap_or(&Value::Null),
            "spec",
            &mut unknown,
        );
    }
    if unknown.is_empty() {
        Ok(object)
    } else {
        Err(unknown
            .into_iter()
            .map(|field| {
                (
                    Some(key.clone()),
                    field,
                    "unknown field".to_owned(),
                    Severity::Error,
                )
            })
            .collect())
    }
}

/// Collects paths present (and non-null) in `original` but absent from the typed round trip.
fn unknown_fields(original: &Value, typed: &Value, path: &str, unknown: &mut Vec<String>) {
    match (original, typed) {
        (Value::Object(original), Value::Object(typed)) => {
            for (name, value) in original {
                let child = format!("{path}.{name}");
                match typed.get(name) {
                    Some(typed_value) => unknown_fields(value, typed_value, &child, unknown),
                    None if !value.is_null() => unknown.push(child),
                    None => {}
                }
            }
        }
        (Value::Array(original), Value::Array(typed)) => {
            for (index, (value, typed_value)) in original.iter().zip(typed).enumerate() {
                unknown_fields(value, typed_value, &format!("{path}[{index}]"), unknown);
            }
        }
        _ => {}
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Manifests read from files and folders.
#[derive(Debug, Clone, Default)]
pub struct LoadedManifests {
    /// The objects.
    pub manifests: Manifests,
    /// Problems found reading them.
    pub problems: Vec<ManifestProblem>,
    /// How many files were read.
    pub file_count: usize,
}

/// Reads every YAML file under `paths` (files, or folders read recursively for `*.yaml` and
/// `*.yml`, in name order). Fails only when a path cannot be read at all.
///
/// Inside a folder, entries whose name starts with `.` are skipped — a mounted ConfigMap's
/// `..data` and `..<timestamp>` folders among them, so each of its files is read once, through
/// its top-level link — and symlinked folders are not followed (a warning says so), so a link
/// to a parent cannot loop. Symlinked files are read.
pub fn load_paths(paths: &[std::path::PathBuf]) -> Result<LoadedManifests, String> {
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    for path in paths {
        collect(path, &mut files, &mut skipped)?;
    }
    let mut loaded = LoadedManifests {
        file_count: files.len(),
        ..Default::default()
    };
    loaded.problems.extend(
        skipped
            .into_iter()
            .map(|folder: std::path::PathBuf| ManifestProblem {
                source: folder.display().to_string(),
                object: None,
                field: String::new(),
                message: "a symlinked folder is not followed; name it in --manifests to read it".to_owned(),
                severity: Severity::Warning,
            }),
    );
    for file in &files {
        let text = std::fs::read_to_string(file)
            .map_err(|error| format!("cannot read {}: {error}", file.display()))?;
        let problems = loaded.manifests.read(&file.display().to_string(), &text);
        loaded.problems.extend(problems);
    }
    Ok(loaded)
}

fn collect(
    path: &std::path::Path,
    files: &mut Vec<std::path::PathBuf>,
    skipped: &mut Vec<std::path::PathBuf>,
) -> Result<(), String> {
    let metadata =
        std::fs::metadata(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    if metadata.is_file() {
        files.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries = Vec::new();
    for entry in
        std::fs::read_dir(path).map_err(|error| format!("cannot list {}: {error}", path.display()))?
    {
        entries.push(
            entry
                .map_err(|error| format!("cannot list {}: {error}", path.display()))?
                .path(),
        );
    }
    entries.sort();
    for entry in entries {
        let hidden = entry
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.starts_with('.'));
        if hidden {
            continue;
        }
        let linked =
            std::fs::symlink_metadata(&entry).is_ok_and(|metadata| metadata.file_type().is_symlink());
        if entry.is_dir() {
            if linked {
                skipped.push(entry);
            } else {
                collect(&entry, files, skipped)?;
            }
        } else if matches!(
            entry.extension().and_then(|extension| extension.to_str()),
            Some("yaml" | "yml")
        ) {
            files.push(entry);
        }
    }
    Ok(())
}
