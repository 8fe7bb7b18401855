//! Wallet use cases: create (with the currency's system accounts), freeze, unfreeze.

use std::sync::Arc;

use serde_json::json;

use crate::auth::audit::{self, Draft};
use crate::auth::Actor;
use crate::engine::Engine;
use crate::error::Error;
use crate::ledger::{Account, AccountKey, AccountStatus, Currency, Msisdn};
use crate::store::WriteTx;

/// Longest display name; names are informational and never sent to the SDK.
pub const DISPLAY_NAME_CHARS_MAX: usize = 100;

/// `POST /api/v1/accounts/`.
#[derive(Clone, Debug)]
pub struct CreateAccount {
    /// The wallet's number.
    pub msisdn: Msisdn,
    /// Its currency.
    pub currency: Currency,
    /// Optional customer name.
    pub display_name: Option<String>,
}

/// Trims a display name; empty becomes `None`.
pub fn check_display_name(name: Option<String>) -> Result<Option<String>, Error> {
    let Some(name) = name else { return Ok(None) };
    let name = name.trim();
    if name.is_empty() {
        return Ok(None);
    }
    if name.chars().count() > DISPLAY_NAME_CHARS_MAX || name.chars().any(char::is_control) {
        return Err(Error::invalid_field(
            "DISPLAY_NAME_FORMAT",
            "display_name",
            format!("display_name must be at most {DISPLAY_NAME_CHARS_MAX} printable characters"),
        ));
    }
    Ok(Some(name.to_owned()))
}

/// Creates `SYS:CASH` and `SYS:SETTLEMENT` for a currency if they do not exist.
pub fn ensure_system_accounts(tx: &mut WriteTx<'_>, currency: Currency) -> Result<(), Error> {
    for key in [AccountKey::Cash(currency), AccountKey::Settlement(currency)] {
        if tx.account(&key)?.is_none() {
            let now = tx.now();
            tx.insert_account(&Account::new_system(key, currency, now))?;
        }
    }
    Ok(())
}

impl Engine {
    /// Creates a wallet.
    pub async fn create_account(self: &Arc<Self>, actor: &Actor, req: CreateAccount) -> Result<Account, Error> {
        let display_name = check_display_name(req.display_name)?;
        let audit_key = self.audit_key.clone();
        let actor = actor.name.clone();
        self.store
            .writer
            .run(move |tx| {
                let key = AccountKey::Wallet(req.msisdn);
                if tx.account(&key)?.is_some() {
                    return Err(Error::conflict("ACCOUNT_EXISTS", format!("wallet {} already exists", req.msisdn))
                        .with_details(json!({ "msisdn": req.msisdn.to_string() })));
                }
                ensure_system_accounts(tx, req.currency)?;
                let account = Account::new_wallet(req.msisdn, req.currency, display_name, tx.now());
                tx.insert_account(&account)?;
                let details = json!({ "currency": account.currency.code(), "display_name": account.display_name });
                audit::append(
                    tx,
                    &audit_key,
                    Draft { actor, action: "ACCOUNT_CREATED".into(), target: Some(account.key.to_string()), details },
                )?;
                Ok(account)
            })
            .await
    }

    /// Freezes (`frozen = true`) or unfreezes a wallet.
    pub async fn set_frozen(
        self: &Arc<Self>,
        actor: &Actor,
        msisdn: Msisdn,
        frozen: bool,
        reason: String,
    ) -> Result<Account, Error> {
        let reason = crate::transfers::resolve::check_reason(&reason)?;
        let audit_key = self.audit_key.clone();
        let actor = actor.name.clone();
        self.store
            .writer
            .run(move |tx| {
                let key = AccountKey::Wallet(msisdn);
                let mut account = tx
                    .account(&key)?
                    .ok_or_else(|| Error::not_found("ACCOUNT_NOT_FOUND", format!("no wallet {msisdn}")))?;
                let target = if frozen { AccountStatus::Frozen } else { AccountStatus::Active };
                if account.status == target {
                    return Err(Error::conflict(
                        "INVALID_STATE",
                        format!("wallet {msisdn} is already {}", target.as_str()),
                    )
                    .with_details(json!({ "status": account.status.as_str() })));
                }
                account.status = target;
                account.status_reason = Some(reason.clone());
                tx.update_account(&account)?;
                let action = if frozen { "ACCOUNT_FROZEN" } else { "ACCOUNT_UNFROZEN" };
                audit::append(
                    tx,
                    &audit_key,
                    Draft {
                        actor,
                        action: action.into(),
                        target: Some(key.to_string()),
                        details: json!({ "reason": reason }),
                    },
                )?;
                Ok(account)
            })
            .await
    }
}
