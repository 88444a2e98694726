//! The MasBackend CRD, installed from the operator's own types.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::runtime::{conditions, wait::await_condition};
use kube::{Api, Client, CustomResourceExt};
use mas_operator::crd::MasBackend;

pub const COLOR_LABEL: &str = mas_operator::crd::COLOR_LABEL;

pub async fn install_crd(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = MasBackend::crd();
    let name = crd.metadata.name.clone().unwrap();
    crds.patch(
        &name,
        &PatchParams::apply("mas-e2e").force(),
        &Patch::Apply(&crd),
    )
    .await
    .expect("apply CRD");
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(crds, &name, conditions::is_crd_established()),
    )
    .await
    .expect("CRD established in time")
    .expect("CRD watch");
}
