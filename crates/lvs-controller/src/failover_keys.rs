//! The keys director sets authenticate their failover heartbeats with: one Secret per set in the
//! controller's namespace (data key `key`), created here with 36 random bytes (48 characters of
//! base64) when it does not exist, and never changed once it does. The chart therefore renders no
//! key: `helm template` and GitOps renders carry none and cannot replace one, and a key an admin
//! put in (or is rotating: agents also accept `previous`) is left alone.

use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

/// The data key agents send with.
pub const KEY: &str = "key";
/// The shortest key agents accept, in bytes.
pub const MIN_KEY_BYTES: usize = 16;
/// Random bytes in a key the controller makes.
const KEY_RANDOM_BYTES: usize = 36;

/// What [`ensure`] found or did for one Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySecret {
    /// It was missing and was created with a random key.
    Created,
    /// It exists with a usable key (left as it is).
    Present,
    /// It exists without a usable `key` (left as it is: an admin's Secret is never overwritten);
    /// the directors of its set take no shared VIP until it has one.
    Unusable(String),
}

/// Why a Secret could not be checked or made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The API refused or could not be reached.
    #[error("failover key Secret {namespace}/{name}: {source}")]
    Api {
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
        /// What the API said.
        #[source]
        source: kube::Error,
    },
    /// The operating system gave no random bytes (never a weak key instead).
    #[error("failover key Secret {namespace}/{name}: the operating system's random generator failed")]
    NoRandomness {
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
    },
}

/// Makes sure each Secret in `names` exists in `namespace` with a key.
///
/// # Errors
///
/// The first API error, naming the Secret.
pub async fn ensure(client: &Client, namespace: &str, names: &[String]) -> Result<Vec<KeySecret>, KeyError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut found = Vec::with_capacity(names.len());
    for name in names {
        let error = |source| KeyError::Api {
            namespace: namespace.to_owned(),
            name: name.clone(),
            source,
        };
        let state = match api.get_opt(name).await.map_err(error)? {
            Some(secret) => usable(&secret),
            None => {
                let key = random_key().map_err(|_| KeyError::NoRandomness {
                    namespace: namespace.to_owned(),
                    name: name.clone(),
                })?;
                create(&api, name, key).await.map_err(error)?
            }
        };
        match &state {
            KeySecret::Created => tracing::info!(secret = %name, "created the failover key Secret"),
            KeySecret::Present => tracing::debug!(secret = %name, "failover key Secret present"),
            KeySecret::Unusable(why) => tracing::error!(
                secret = %name,
                "failover key Secret unusable, left as it is: {why}; its directors take no shared VIP"
            ),
        }
        found.push(state);
    }
    Ok(found)
}

/// Retries [`ensure`] every `period` until it succeeds once (the API may be unreachable at
/// start).
pub async fn ensure_until_done(client: Client, namespace: String, names: Vec<String>, period: Duration) {
    if names.is_empty() {
        return;
    }
    loop {
        match ensure(&client, &namespace, &names).await {
            Ok(_) => return,
            Err(error) => tracing::warn!(%error, "cannot check the failover keys yet; retrying"),
        }
        tokio::time::sleep(period).await;
    }
}

async fn create(api: &Api<Secret>, name: &str, key: Vec<u8>) -> Result<KeySecret, kube::Error> {
    match api.create(&PostParams::default(), &new_secret(name, key)).await {
        Ok(_) => Ok(KeySecret::Created),
        // Another replica made it first.
        Err(kube::Error::Api(response)) if response.code == 409 => Ok(KeySecret::Present),
        Err(other) => Err(other),
    }
}

fn usable(secret: &Secret) -> KeySecret {
    match secret.data.as_ref().and_then(|data| data.get(KEY)) {
        None => KeySecret::Unusable(format!("no data key `{KEY}`")),
        Some(ByteString(bytes)) if bytes.trim_ascii_end().len() < MIN_KEY_BYTES => {
            KeySecret::Unusable(format!(
                "`{KEY}` has {} bytes, fewer than {MIN_KEY_BYTES}",
                bytes.trim_ascii_end().len()
            ))
        }
        Some(_) => KeySecret::Present,
    }
}

fn new_secret(name: &str, key: Vec<u8>) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(
                [(
                    "app.kubernetes.io/managed-by".to_owned(),
                    "lvs-controller".to_owned(),
                )]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some([(KEY.to_owned(), ByteString(key))].into()),
        ..Secret::default()
    }
}

/// 36 random bytes from the operating system, as base64 text (no trailing whitespace to trim).
fn random_key() -> Result<Vec<u8>, ring::error::Unspecified> {
    use base64::Engine as _;
    let mut bytes = [0u8; KEY_RANDOM_BYTES];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)?;
    Ok(base64::engine::general_purpose::STANDARD
        .encode(bytes)
        .into_bytes())
}

#[cfg(test)]
#[path = "failover_keys/tests.rs"]
mod tests;
