//! Request bodies that several routes share, decoded strictly (unknown fields refused).

use serde::Deserialize;

use crate::error::Error;
use crate::transfers::resolve::{check_reason, ResolveRequest};

/// `{"reason": …}`: freeze/unfreeze, rejections.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ReasonBody {
    pub(super) reason: String,
}

/// `{}` (or no body): approvals and job actions.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct Empty {}

/// Resolving an IN_DOUBT transfer or bulk item: the hub's id, or an outcome, and why.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ResolveBody {
    sdk_transfer_id: Option<String>,
    outcome: Option<String>,
    reason: String,
}

impl ResolveBody {
    /// The checked request: an SDK id of the hub's form (it becomes part of the URL
    /// asked), or COMPLETED/FAILED, never both.
    pub(super) fn into_request(self) -> Result<ResolveRequest, Error> {
        let reason = check_reason(&self.reason)?;
        Ok(match (self.sdk_transfer_id, self.outcome.as_deref()) {
            (Some(sdk_transfer_id), None) => {
                let sdk_transfer_id = sdk_transfer_id.trim().to_owned();
                if sdk_transfer_id.is_empty()
                    || sdk_transfer_id.len() > 64
                    || !sdk_transfer_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                {
                    return Err(Error::invalid_field(
                        "SDK_TRANSFER_ID_FORMAT",
                        "sdk_transfer_id",
                        "sdk_transfer_id must be a UUID or ULID",
                    ));
                }
                ResolveRequest::ByHub { sdk_transfer_id, reason }
            }
            (None, Some("COMPLETED")) => ResolveRequest::ByOperator { completed: true, reason },
            (None, Some("FAILED")) => ResolveRequest::ByOperator { completed: false, reason },
            (None, Some(_)) => {
                return Err(Error::invalid_field("INVALID_FIELD", "outcome", "outcome must be COMPLETED or FAILED"))
            }
            _ => {
                return Err(Error::invalid(
                    "RESOLVE_FORMAT",
                    "send either sdk_transfer_id or outcome (COMPLETED or FAILED), with a reason",
                ))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(json: &str) -> Result<ResolveRequest, Error> {
        super::super::request::decode_json::<ResolveBody>(json.as_bytes())?.into_request()
    }

    #[test]
    fn a_resolve_names_a_hub_id_of_the_hubs_form_or_an_outcome() {
        let by_hub = resolve(r#"{"sdk_transfer_id":" 01HXZ5-abc ","reason":"hub says paid"}"#).expect("valid");
        assert!(matches!(by_hub, ResolveRequest::ByHub { ref sdk_transfer_id, .. } if sdk_transfer_id == "01HXZ5-abc"));
        let failed = resolve(r#"{"outcome":"FAILED","reason":"never reached the hub"}"#).expect("valid");
        assert!(matches!(failed, ResolveRequest::ByOperator { completed: false, .. }));
        for (body, code) in [
            (r#"{"sdk_transfer_id":"../__sim/transfers","reason":"r"}"#, "SDK_TRANSFER_ID_FORMAT"),
            (r#"{"sdk_transfer_id":"  ","reason":"r"}"#, "SDK_TRANSFER_ID_FORMAT"),
            (r#"{"outcome":"PAID","reason":"r"}"#, "INVALID_FIELD"),
            (r#"{"sdk_transfer_id":"a1","outcome":"FAILED","reason":"r"}"#, "RESOLVE_FORMAT"),
            (r#"{"reason":"r"}"#, "RESOLVE_FORMAT"),
        ] {
            assert_eq!(resolve(body).err().map(|e| e.code), Some(code.to_owned()), "{body}");
        }
    }
}
