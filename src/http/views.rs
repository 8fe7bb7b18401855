//! JSON shapes of SPEC §6.1: accounts, transfers, postings and list pages. Money goes
//! out as canonical decimal strings.

use serde_json::{json, Value};

use crate::ledger::{format_minor, Account, AccountKey, Posting, PostingKind, QuotedMoney, Transfer};
use crate::store::Page;

/// A wallet.
pub fn account(a: &Account) -> Value {
    let c = a.currency;
    json!({
        "msisdn": a.key.to_string(),
        "currency": c.code(),
        "status": a.status.as_str(),
        "display_name": a.display_name,
        "available": format_minor(a.available, c),
        "reserved": format_minor(a.reserved, c),
        "balance": format_minor(a.balance(), c),
        "status_reason": a.status_reason,
        "created_at": a.created_at.to_string(),
    })
}

/// A system account.
pub fn system_account(a: &Account) -> Value {
    let c = a.currency;
    let kind = match a.key {
        AccountKey::Cash(_) => "CASH",
        AccountKey::Settlement(_) => "SETTLEMENT",
        AccountKey::Wallet(_) => "WALLET",
    };
    json!({
        "account": a.key.to_string(),
        "kind": kind,
        "currency": c.code(),
        "available": format_minor(a.available, c),
        "reserved": format_minor(a.reserved, c),
        "balance": format_minor(a.balance(), c),
        "created_at": a.created_at.to_string(),
    })
}

fn quoted(m: &Option<QuotedMoney>) -> Value {
    match m {
        Some(m) => json!({ "amount": m.amount, "currency": m.currency }),
        None => Value::Null,
    }
}

/// A transfer record (SPEC §3 "Record").
pub fn transfer(t: &Transfer) -> Value {
    let c = t.currency;
    let sdk = t.sdk.as_ref();
    let quote = sdk.and_then(|s| s.quote.as_ref()).map(|q| {
        json!({
            "transfer_amount": quoted(&q.transfer_amount),
            "payee_receive_amount": quoted(&q.payee_receive_amount),
            "payee_fsp_fee": quoted(&q.payee_fsp_fee),
            "payee_fsp_commission": quoted(&q.payee_fsp_commission),
            "expiration": q.expiration,
        })
    });
    json!({
        "transfer_id": t.id.to_string(),
        "sender_msisdn": t.sender.to_string(),
        "receiver_msisdn": t.receiver.to_string(),
        "amount": format_minor(t.amount, c),
        "currency": c.code(),
        "status": t.status.as_str(),
        "route": t.route.as_str(),
        "note": t.note,
        "reference": t.reference,
        "sdk_transfer_id": sdk.and_then(|s| s.transfer_id.clone()),
        "sdk_phase": sdk.map(|s| s.phase.as_str()),
        "quote": quote,
        "error_code": t.error.as_ref().map(|e| e.code.clone()),
        "error_message": t.error.as_ref().map(|e| e.message.clone()),
        "retryable": t.error.as_ref().map(|e| e.retryable).unwrap_or(false),
        "bulk_job_id": t.bulk.map(|b| b.job_id.to_string()),
        "bulk_line": t.bulk.map(|b| b.line),
        "resolution": t.resolution.as_ref().map(|r| json!({"by": r.by, "reason": r.reason, "at": r.at.to_string()})),
        "created_at": t.created_at.to_string(),
        "updated_at": t.updated_at.to_string(),
        "created_by": t.created_by,
        "approved_by": t.approved_by,
    })
}

/// A transfer with its journal entries.
pub fn transfer_detail(t: &Transfer, postings: &[Posting]) -> Value {
    let mut v = transfer(t);
    v["postings"] = postings.iter().map(|p| posting(p, t)).collect();
    v
}

fn posting(p: &Posting, t: &Transfer) -> Value {
    let kind = match p.kind {
        PostingKind::Transfer => "TRANSFER",
        PostingKind::Reserve => "RESERVE",
        PostingKind::Post => "POST",
        PostingKind::Void => "VOID",
    };
    let bucket = |b| match b {
        crate::ledger::Bucket::Available => "available",
        crate::ledger::Bucket::Reserved => "reserved",
    };
    json!({
        "kind": kind,
        "from": { "account": p.from.account.to_string(), "bucket": bucket(p.from.bucket) },
        "to": { "account": p.to.account.to_string(), "bucket": bucket(p.to.bucket) },
        "amount": format_minor(p.amount, t.currency),
    })
}

/// `{items, next_cursor}`.
pub fn page<T>(page: &Page<T>, view: impl Fn(&T) -> Value) -> Value {
    json!({ "items": page.items.iter().map(view).collect::<Vec<_>>(), "next_cursor": page.next_cursor })
}
