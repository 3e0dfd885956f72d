//! The start-up check: the CustomResourceDefinitions the controller watches must be installed
//! and serve our version; otherwise it stops with a message that says how to install them.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{Api, Client, CustomResourceExt};
use lvs_api::{AddressPool, LvsNodeConfig, RealServer, VirtualServer};

/// How to install the CRDs, for error messages.
pub const INSTALL_HINT: &str = "install them with `kubectl apply -f crds/` from the lvs-operator source tree, \
     or install the Helm chart (charts/lvs-operator), which includes them";

/// Why the CRDs are not usable.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    /// Some CRDs are not installed.
    #[error("the CustomResourceDefinitions {missing} are not installed; {INSTALL_HINT}")]
    Missing {
        /// The missing CRD names, comma-separated.
        missing: String,
    },
    /// A CRD is installed but does not serve the version this controller speaks.
    #[error(
        "the CustomResourceDefinition {name} does not serve {version} (an older or newer lvs-operator?); {INSTALL_HINT}"
    )]
    VersionNotServed {
        /// The CRD.
        name: String,
        /// The version we need.
        version: &'static str,
    },
    /// The CRD could not be read.
    #[error(
        "cannot read the CustomResourceDefinition {name} (may the controller's ServiceAccount get customresourcedefinitions?): {source}"
    )]
    Unreadable {
        /// The CRD.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

/// The CRDs the controller needs.
pub fn required() -> [String; 4] {
    [
        AddressPool::crd_name().to_owned(),
        VirtualServer::crd_name().to_owned(),
        RealServer::crd_name().to_owned(),
        LvsNodeConfig::crd_name().to_owned(),
    ]
}

/// Checks that every required CRD is installed and serves `v1alpha1`.
pub async fn check(client: &Client) -> Result<(), CrdError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut missing = Vec::new();
    for name in required() {
        let crd = api.get_opt(&name).await.map_err(|source| CrdError::Unreadable {
            name: name.clone(),
            source,
        })?;
        let Some(crd) = crd else {
            missing.push(name);
            continue;
        };
        let served = crd
            .spec
            .versions
            .iter()
            .any(|version| version.name == lvs_api::VERSION && version.served);
        if !served {
            return Err(CrdError::VersionNotServed {
                name,
                version: lvs_api::VERSION,
            });
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(CrdError::Missing {
            missing: missing.join(", "),
        })
    }
}
