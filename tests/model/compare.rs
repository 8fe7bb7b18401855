//! The state checks made after every step: each wallet and system account equals the
//! model, each transfer, adjustment, job and item has the model's status, nothing
//! exists that the model does not know of, and `check::check_store` (what
//! `sysgp check` runs) finds the four invariants of SPEC §2 intact. At the end of a
//! case, the simulator's list of paid transfers says each SDK payment the model
//! expects was paid exactly once and no other was.

use sysgp::bulk::model::Item;
use sysgp::ledger::{AccountKey, AccountStatus, Currency};

use crate::ops::{wallet_msisdn, WALLETS};
use crate::reference::{Cur, Mismatch, Model, Sys};
use crate::system::Sut;

fn currency(cur: Cur) -> Currency {
    Currency::parse(cur.code()).expect("currency")
}

/// Compares the whole store with the model.
pub fn state(sut: &Sut<'_>, model: &Model) -> Result<(), Mismatch> {
    let store = &sut.engine.store;
    let err = |e: sysgp::store::StoreError| format!("store read failed: {e}");
    for w in 0..WALLETS {
        let key = AccountKey::Wallet(sysgp::ledger::Msisdn::parse(&wallet_msisdn(w)).expect("msisdn"));
        let got = store.account(&key).map_err(err)?;
        match (model.wallets.get(&w), got) {
            (None, None) => {}
            (Some(m), Some(a)) => {
                let frozen = a.status == AccountStatus::Frozen;
                let seen = (a.currency.code().to_owned(), frozen, a.available, a.reserved);
                let want = (m.cur.code().to_owned(), m.frozen, m.available, m.reserved);
                if seen != want {
                    return Err(format!(
                        "wallet {w}: (currency, frozen, available, reserved) is {seen:?}, the model says {want:?}"
                    ));
                }
            }
            (m, a) => return Err(format!("wallet {w}: the model has {m:?}, the store {a:?}")),
        }
    }
    for cur in [Cur::Xof, Cur::Usd] {
        for sys in [Sys::Cash, Sys::Settlement] {
            let key = match sys {
                Sys::Cash => AccountKey::Cash(currency(cur)),
                Sys::Settlement => AccountKey::Settlement(currency(cur)),
            };
            let got = store.account(&key).map_err(err)?.map(|a| (a.available, a.reserved));
            let want = model.system.get(&(cur, sys)).map(|b| (*b, 0));
            if got != want {
                return Err(format!("{key}: (available, reserved) is {got:?}, the model says {want:?}"));
            }
        }
    }
    transfers(sut, model)?;
    jobs(sut, model)?;
    let report = sysgp::check::check_store(store).map_err(err)?;
    if !report.ok() {
        return Err(format!("invariants violated: {:?}", report.violations));
    }
    Ok(())
}

fn transfers(sut: &Sut<'_>, model: &Model) -> Result<(), Mismatch> {
    let store = &sut.engine.store;
    let count = store.all_transfers().count();
    if count != model.transfers.len() {
        return Err(format!("the store holds {count} transfers, the model {}", model.transfers.len()));
    }
    for t in &model.transfers {
        let got =
            store.transfer(t.id).map_err(|e| e.to_string())?.ok_or_else(|| format!("transfer {} is missing", t.id))?;
        let code = got.error.as_ref().map(|e| e.code.as_str());
        if got.status != t.status || code != t.code.as_deref() || got.amount != t.amount {
            return Err(format!(
                "transfer {} ({:?}) is {:?} {code:?} of {}, the model says {:?} {:?} of {}",
                t.id, t.kind, got.status, got.amount, t.status, t.code, t.amount
            ));
        }
    }
    for a in &model.adjustments {
        let got = sut.engine.adjustment(a.id).map_err(|e| e.to_string())?;
        if got.status != a.status {
            return Err(format!("adjustment {} is {:?}, the model says {:?}", a.id, got.status, a.status));
        }
    }
    Ok(())
}

fn jobs(sut: &Sut<'_>, model: &Model) -> Result<(), Mismatch> {
    for j in &model.jobs {
        let got = sut.engine.job(j.id).map_err(|e| e.to_string())?;
        if got.status != j.status || got.reserved_remaining != j.reserved_remaining {
            return Err(format!(
                "job {} is {:?} holding {}, the model says {:?} holding {}",
                j.id, got.status, got.reserved_remaining, j.status, j.reserved_remaining
            ));
        }
        let items: Vec<Item> = sut.engine.store.items(j.id, 0, 1000, |_: &Item| true).map_err(|e| e.to_string())?;
        let seen: Vec<_> = items.iter().map(|i| (i.line, i.status, i.error.as_ref().map(|e| e.code.clone()))).collect();
        let want: Vec<_> = j.items.iter().map(|i| (i.line, i.status, i.code.clone())).collect();
        if seen != want {
            return Err(format!("job {} items are {seen:?}, the model says {want:?}", j.id));
        }
    }
    Ok(())
}

/// Exactly-once payment: every SDK transfer the hub committed shows once in the
/// simulator's list, every other one not at all.
pub fn paid(sut: &Sut<'_>, model: &Model) -> Result<(), Mismatch> {
    let paid = sut.paid();
    for t in model.transfers.iter().filter(|t| t.sdk) {
        let times = paid.get(&t.id.to_string()).copied().unwrap_or(0);
        if times != usize::from(t.hub_paid) {
            return Err(format!(
                "SDK transfer {} ({:?}, {:?}) was paid {times} times by the simulator, the model expects {}",
                t.id,
                t.kind,
                t.status,
                usize::from(t.hub_paid)
            ));
        }
    }
    Ok(())
}
