//! The reference model, continued: wallets, deposits and withdrawals (with their
//! approval above the threshold), P2P transfers and adjustments (SPEC §2, §3, §7).

use sysgp::ledger::TransferStatus;
use sysgp::transfers::adjust::AdjustmentStatus;

use crate::obs::Obs;
use crate::ops::{wallet_msisdn, Adjust, Cash, P2p};
use crate::reference::{
    canonical, expect, minor, refused, sdk_outcome, transfer_answer, Bound, Cur, Kind, MAdjustment, MTransfer,
    Mismatch, Model, Sys, Wallet, CASH_APPROVAL_ABOVE,
};

impl Model {
    pub(crate) fn create_wallet(&mut self, w: u8, cur: Cur, got: &Obs) -> Result<(), Mismatch> {
        if self.wallets.contains_key(&w) {
            return expect(&refused(409, "ACCOUNT_EXISTS"), got);
        }
        expect(&Obs::Done, got)?;
        self.wallets.insert(w, Wallet { cur, frozen: false, available: 0, reserved: 0 });
        self.balance_mut(cur, Sys::Cash);
        self.balance_mut(cur, Sys::Settlement);
        Ok(())
    }

    pub(crate) fn freeze(&mut self, w: u8, frozen: bool, got: &Obs) -> Result<(), Mismatch> {
        let Some(wallet) = self.wallets.get_mut(&w) else { return expect(&refused(404, "ACCOUNT_NOT_FOUND"), got) };
        if wallet.frozen == frozen {
            return expect(&refused(409, "INVALID_STATE"), got);
        }
        expect(&Obs::Done, got)?;
        wallet.frozen = frozen;
        Ok(())
    }

    pub(crate) fn cash(&mut self, c: &Cash, got: &Obs) -> Result<(), Mismatch> {
        let user = "maker";
        let Some(wallet) = self.wallets.get(&c.w).cloned() else {
            return expect(&refused(404, "ACCOUNT_NOT_FOUND"), got);
        };
        let amount = match minor(c.amount, wallet.cur) {
            Ok(a) => a,
            Err(code) => return expect(&refused(400, code), got),
        };
        let direction = if c.withdraw { "withdraw" } else { "deposit" };
        let request = format!("{direction}|{}|{amount}|{}|{:?}", c.w, wallet.cur.code(), c.reference);
        if let Some(answer) = self.replay(user, c.key, None, &request) {
            return expect(&answer.unwrap_or_else(|e| e), got);
        }
        if let Some(r) = c.reference {
            if self.references.contains(&(c.w, r.to_owned())) {
                return expect(&refused(409, "REFERENCE_EXISTS"), got);
            }
        }
        if wallet.frozen {
            return self.reject(got, user, c.key, &request, "ACCOUNT_FROZEN");
        }
        if c.withdraw && wallet.available < amount {
            return self.reject(got, user, c.key, &request, "INSUFFICIENT_FUNDS");
        }
        let waits = amount > CASH_APPROVAL_ABOVE * minor("1", wallet.cur).unwrap_or(1);
        let status = if waits { TransferStatus::AwaitingApproval } else { TransferStatus::Completed };
        let id = transfer_answer(got, status, None)?;
        if let Some(r) = c.reference {
            self.references.insert((c.w, r.to_owned()));
        }
        self.transfers.push(MTransfer {
            id,
            status,
            code: None,
            kind: Kind::Cash { w: c.w, withdraw: c.withdraw },
            amount,
            cur: wallet.cur,
            request: request.clone(),
            created_by: user.to_owned(),
            sdk: false,
            hub_paid: false,
        });
        if !waits {
            self.post_cash(self.transfers.len() - 1);
        }
        self.bind(user, c.key, &request, Bound::Transfer(self.transfers.len() - 1));
        Ok(())
    }

    pub(crate) fn post_cash(&mut self, i: usize) {
        let (Kind::Cash { w, withdraw }, amount, cur) =
            (self.transfers[i].kind, self.transfers[i].amount, self.transfers[i].cur)
        else {
            return;
        };
        let sign = if withdraw { -1 } else { 1 };
        self.wallet_mut(w).available += sign * amount;
        *self.balance_mut(cur, Sys::Cash) -= sign * amount;
    }

    pub(crate) fn decide_cash(
        &mut self,
        picked: Option<MTransfer>,
        approve: bool,
        by_maker: bool,
        got: &Obs,
    ) -> Result<(), Mismatch> {
        let Some(t) = picked else { return expect(&Obs::Skipped, got) };
        let i = self.transfers.iter().position(|x| x.id == t.id).unwrap_or_default();
        let checker = if by_maker { t.created_by.clone() } else { "checker".to_owned() };
        if t.status != TransferStatus::AwaitingApproval {
            return expect(&refused(409, "INVALID_STATE"), got);
        }
        if checker == t.created_by {
            return expect(&refused(403, "SELF_APPROVAL"), got);
        }
        let Kind::Cash { w, withdraw } = t.kind else { return Err("picked a cash transfer that is not cash".into()) };
        if !approve {
            expect(&Obs::Transfer { id: t.id, status: TransferStatus::Rejected, code: None, replayed: false }, got)?;
            self.transfers[i].status = TransferStatus::Rejected;
            return Ok(());
        }
        let wallet = self.wallets[&w].clone();
        if wallet.frozen {
            return expect(&refused(422, "ACCOUNT_FROZEN"), got);
        }
        if withdraw && wallet.available < t.amount {
            return expect(&refused(422, "INSUFFICIENT_FUNDS"), got);
        }
        expect(&Obs::Transfer { id: t.id, status: TransferStatus::Completed, code: None, replayed: false }, got)?;
        self.transfers[i].status = TransferStatus::Completed;
        self.post_cash(i);
        Ok(())
    }

    pub(crate) fn p2p(&mut self, p: &P2p, got: &Obs) -> Result<(), Mismatch> {
        let user = if p.maker2 { "maker2" } else { "maker" };
        let sender = self.wallets.get(&p.from).cloned();
        let tid = p.tid.map(|i| self.tids[usize::from(i)]);
        // Without a currency the amount cannot be read, so nothing can be normalised or
        // stored: an unknown sender is refused before anything else.
        let Some(cur) = p.usd.map(Cur::of).or(sender.as_ref().map(|s| s.cur)) else {
            return expect(&refused(422, "ACCOUNT_NOT_FOUND"), got);
        };
        let amount = match minor(p.amount, cur) {
            Ok(a) => a,
            Err(code) => return expect(&refused(400, code), got),
        };
        let to = p.to.msisdn();
        let request = format!("p2p|{}|{to}|{amount}|{}", wallet_msisdn(p.from), cur.code());
        if let Some(answer) = self.replay(user, p.key, tid, &request) {
            return expect(&answer.unwrap_or_else(|e| e), got);
        }
        let receiver_index = (0..crate::ops::WALLETS).find(|w| wallet_msisdn(*w) == to);
        let receiver = receiver_index.and_then(|w| self.wallets.get(&w).cloned());
        let refusal = match &sender {
            None => Some("ACCOUNT_NOT_FOUND"),
            Some(s) if s.frozen => Some("ACCOUNT_FROZEN"),
            Some(s) if s.cur != cur => Some("CURRENCY_MISMATCH"),
            Some(_) if receiver_index == Some(p.from) => Some("SAME_ACCOUNT"),
            Some(_) if receiver.as_ref().is_some_and(|r| r.frozen) => Some("ACCOUNT_FROZEN"),
            Some(_) if receiver.as_ref().is_some_and(|r| r.cur != cur) => Some("CURRENCY_MISMATCH"),
            Some(s) if s.available < amount => Some("INSUFFICIENT_FUNDS"),
            Some(_) => None,
        };
        if let Some(code) = refusal {
            return self.reject(got, user, p.key, &request, code);
        }
        let (status, code, hub_paid) = match receiver {
            Some(_) => (TransferStatus::Completed, None, false),
            None => sdk_outcome(&to, &canonical(amount, cur)),
        };
        let id = transfer_answer(got, status, code)?;
        if tid.is_some_and(|t| t != id) {
            return Err(format!("the transfer got id {id}, not the client's transfer_id {tid:?}"));
        }
        let kind = if receiver.is_some() { Kind::OnUs } else { Kind::Sdk { from: p.from } };
        self.transfers.push(MTransfer {
            id,
            status,
            code: code.map(str::to_owned),
            kind,
            amount,
            cur,
            request: request.clone(),
            created_by: user.to_owned(),
            sdk: receiver.is_none(),
            hub_paid,
        });
        self.wallet_mut(p.from).available -= amount;
        match (receiver_index, kind, status) {
            (Some(r), Kind::OnUs, _) => self.wallet_mut(r).available += amount,
            (_, _, TransferStatus::Completed) => *self.balance_mut(cur, Sys::Settlement) += amount,
            (_, _, TransferStatus::Failed) => self.wallet_mut(p.from).available += amount,
            _ => self.wallet_mut(p.from).reserved += amount,
        }
        self.bind(user, p.key, &request, Bound::Transfer(self.transfers.len() - 1));
        Ok(())
    }

    pub(crate) fn adjust(&mut self, a: &Adjust, got: &Obs) -> Result<(), Mismatch> {
        let user = if a.maker2 { "maker2" } else { "maker" };
        // As for P2P: without the wallet there is no currency to read the amount with.
        let Some(wallet) = self.wallets.get(&a.w).cloned() else {
            return expect(&refused(422, "ACCOUNT_NOT_FOUND"), got);
        };
        let amount = match minor(a.amount, wallet.cur) {
            Ok(x) => x,
            Err(code) => return expect(&refused(400, code), got),
        };
        let request = format!("adjustment|{}|{}|{}|{amount}", a.w, a.settlement, a.credit);
        if let Some(answer) = self.replay(user, a.key, None, &request) {
            return expect(&answer.unwrap_or_else(|e| e), got);
        }
        let refers = self.refers_to(a.refers);
        if refers.is_some_and(|id| !self.transfers.iter().any(|t| t.id == id)) {
            return self.reject(got, user, a.key, &request, "TRANSFER_NOT_FOUND");
        }
        let (id, status, transfer, replayed) = match got {
            Obs::Adjustment { id, status, transfer, replayed } => (*id, *status, *transfer, *replayed),
            other => return Err(format!("expected a new adjustment, the system answered {other:?}")),
        };
        if status != AdjustmentStatus::AwaitingApproval || transfer.is_some() || replayed {
            return Err(format!("expected a new adjustment AWAITING_APPROVAL, the system answered {got:?}"));
        }
        self.adjustments.push(MAdjustment {
            id,
            w: a.w,
            settlement: a.settlement,
            credit: a.credit,
            amount,
            maker: user.to_owned(),
            status,
        });
        self.bind(user, a.key, &request, Bound::Adjustment(self.adjustments.len() - 1));
        Ok(())
    }

    pub(crate) fn decide_adjustment(
        &mut self,
        picked: Option<MAdjustment>,
        approve: bool,
        by_maker: bool,
        got: &Obs,
    ) -> Result<(), Mismatch> {
        let Some(adj) = picked else { return expect(&Obs::Skipped, got) };
        let i = self.adjustments.iter().position(|x| x.id == adj.id).unwrap_or_default();
        let checker = if by_maker { adj.maker.clone() } else { "checker".to_owned() };
        if adj.status != AdjustmentStatus::AwaitingApproval {
            return expect(&refused(409, "INVALID_STATE"), got);
        }
        if checker == adj.maker {
            return expect(&refused(403, "SELF_APPROVAL"), got);
        }
        if !approve {
            let want =
                Obs::Adjustment { id: adj.id, status: AdjustmentStatus::Rejected, transfer: None, replayed: false };
            expect(&want, got)?;
            self.adjustments[i].status = AdjustmentStatus::Rejected;
            return Ok(());
        }
        let wallet = self.wallets[&adj.w].clone();
        if !adj.credit && wallet.available < adj.amount {
            return expect(&refused(422, "INSUFFICIENT_FUNDS"), got);
        }
        let transfer = match got {
            Obs::Adjustment { id, status: AdjustmentStatus::Posted, transfer: Some(t), replayed: false }
                if *id == adj.id =>
            {
                *t
            }
            other => return Err(format!("expected adjustment {} POSTED with a transfer, got {other:?}", adj.id)),
        };
        self.adjustments[i].status = AdjustmentStatus::Posted;
        self.transfers.push(MTransfer {
            id: transfer,
            status: TransferStatus::Completed,
            code: None,
            kind: Kind::Adjustment,
            amount: adj.amount,
            cur: wallet.cur,
            request: String::new(),
            created_by: adj.maker.clone(),
            sdk: false,
            hub_paid: false,
        });
        let sign = if adj.credit { 1 } else { -1 };
        self.wallet_mut(adj.w).available += sign * adj.amount;
        let counter = if adj.settlement { Sys::Settlement } else { Sys::Cash };
        *self.balance_mut(wallet.cur, counter) -= sign * adj.amount;
        Ok(())
    }
}
