//! A transfer's life in the simulated SDK and hub: party lookup → quote → transfer
//! (prepare/fulfil), the stops for acceptance, the deterministic triggers and the
//! random failures. Pure state machine: no IO, the clock and the dice are passed in.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use uuid::Uuid;

use super::schema::{Continuation, TransferRequest};
use super::Accept;

/// An FSPIOP error as the hub reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct FspError {
    pub(super) code: &'static str,
    pub(super) description: &'static str,
}

/// Payee msisdn ending in `404`.
pub(super) const PARTY_NOT_FOUND: FspError = FspError { code: "3204", description: "Party not found" };
/// Amount `666`.
pub(super) const QUOTE_REJECTED: FspError = FspError { code: "5103", description: "Payee FSP rejected quote" };
/// Amount `13` and `--fail-rate`; the description is the captured SDK's, word for word.
pub(super) const TRANSFER_REJECTED: FspError = FspError { code: "5105", description: "Payee FSP rejected transaction" };
/// Amount `4001`.
pub(super) const PAYER_LIQUIDITY: FspError = FspError { code: "4001", description: "Payer FSP insufficient liquidity" };

/// Where a transfer stands. Everything after the two `Waiting*` phases is final.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Payee resolved; waits for `PUT {"acceptParty": ..}`.
    WaitingParty,
    /// Quote received; waits for `PUT {"acceptQuote": ..}`.
    WaitingQuote,
    /// The party lookup failed (msisdn ending in `404`).
    PartyFailed(FspError),
    /// The party lookup timed out (msisdn ending in `408`).
    PartyTimeout,
    /// The payee FSP refused the quote (amount `666`).
    QuoteFailed(FspError),
    /// The client declined the party or the quote; nothing was prepared.
    Declined,
    /// Prepared, then refused (amounts `13`, `4001`, `--fail-rate`): the hub aborted it.
    TransferFailed(FspError),
    /// Paid, and the reply says so.
    Committed,
    /// Paid, but the reply was a fulfil timeout (amount `408`): the client cannot know.
    CommittedUnseen,
}

impl Phase {
    /// Whether the client still has a say.
    pub(super) fn is_waiting(self) -> bool {
        matches!(self, Phase::WaitingParty | Phase::WaitingQuote)
    }

    /// Whether money moved.
    pub(super) fn is_paid(self) -> bool {
        matches!(self, Phase::Committed | Phase::CommittedUnseen)
    }

    /// Whether the payee was resolved (so `to` is enriched and `getPartiesResponse` is a party).
    pub(super) fn party_resolved(self) -> bool {
        !matches!(self, Phase::PartyFailed(_) | Phase::PartyTimeout)
    }

    /// Whether the transfer was prepared at the hub (`transferState.prepare` present).
    pub(super) fn prepared(self) -> bool {
        matches!(self, Phase::TransferFailed(_) | Phase::Committed | Phase::CommittedUnseen)
    }
}

/// The stages the SDK runs, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Party,
    Quote,
    Transfer,
}

/// One transfer with everything a reply needs.
#[derive(Clone, Debug)]
pub(super) struct Live {
    pub(super) id: Uuid,
    pub(super) request: TransferRequest,
    pub(super) initiated: SystemTime,
    /// When the transfer reached a final phase.
    pub(super) completed: Option<SystemTime>,
    pub(super) accept_party: Option<bool>,
    pub(super) accept_quote: Option<bool>,
    /// Whether a quote was requested (it is not after a party failure or `acceptParty: false`).
    pub(super) quoted: bool,
    pub(super) phase: Phase,
}

impl Live {
    /// A new transfer, run from the party lookup until it waits or ends.
    pub(super) fn start(id: Uuid, request: TransferRequest, now: SystemTime, accept: Accept, dice: &Dice) -> Live {
        let mut live = Live {
            id,
            request,
            initiated: now,
            completed: None,
            accept_party: None,
            accept_quote: None,
            quoted: false,
            phase: Phase::WaitingParty,
        };
        live.run(Stage::Party, accept, dice, now);
        live
    }

    /// Applies a client continuation; the error is the 400 message when the transfer is
    /// not waiting for this kind of acceptance.
    pub(super) fn resume(
        &mut self,
        step: Continuation,
        accept: Accept,
        dice: &Dice,
        now: SystemTime,
    ) -> Result<(), String> {
        match (self.phase, step) {
            (Phase::WaitingParty, Continuation::AcceptParty(yes)) => {
                self.accept_party = Some(yes);
                if yes {
                    self.run(Stage::Quote, accept, dice, now);
                } else {
                    self.finish(Phase::Declined, now);
                }
                Ok(())
            }
            (Phase::WaitingQuote, Continuation::AcceptQuote(yes)) => {
                self.accept_quote = Some(yes);
                if yes {
                    self.run(Stage::Transfer, accept, dice, now);
                } else {
                    self.finish(Phase::Declined, now);
                }
                Ok(())
            }
            (phase, step) => {
                let wanted = match step {
                    Continuation::AcceptParty(_) => "party",
                    Continuation::AcceptQuote(_) => "quote",
                };
                Err(format!("transfer {} is not waiting for {wanted} acceptance (state: {phase:?})", self.id))
            }
        }
    }

    /// Runs the stages from `stage` on, stopping where the accept mode asks the client.
    fn run(&mut self, stage: Stage, accept: Accept, dice: &Dice, now: SystemTime) {
        let amount = self.request.amount.as_str();
        if stage == Stage::Party {
            let payee = self.request.payee_id.as_str();
            if payee.ends_with("404") {
                return self.finish(Phase::PartyFailed(PARTY_NOT_FOUND), now);
            }
            if payee.ends_with("408") {
                return self.finish(Phase::PartyTimeout, now);
            }
            if matches!(accept, Accept::Party | Accept::Both) {
                self.phase = Phase::WaitingParty;
                return;
            }
        }
        if stage != Stage::Transfer {
            self.quoted = true;
            if amount == "666" {
                return self.finish(Phase::QuoteFailed(QUOTE_REJECTED), now);
            }
            if matches!(accept, Accept::Quote | Accept::Both) {
                self.phase = Phase::WaitingQuote;
                return;
            }
        }
        let end = match amount {
            "13" => Phase::TransferFailed(TRANSFER_REJECTED),
            "4001" => Phase::TransferFailed(PAYER_LIQUIDITY),
            "408" => Phase::CommittedUnseen,
            _ if dice.fails() => Phase::TransferFailed(TRANSFER_REJECTED),
            _ => Phase::Committed,
        };
        self.finish(end, now);
    }

    fn finish(&mut self, phase: Phase, now: SystemTime) {
        debug_assert!(!phase.is_waiting());
        self.phase = phase;
        self.completed = Some(now);
    }
}

/// The seeded source of `--fail-rate` failures: splitmix64 over an atomic counter, so
/// draws are lock-free and the sequence of draws is fixed by the seed.
#[derive(Debug)]
pub(super) struct Dice {
    counter: AtomicU64,
    fail_rate: f64,
}

/// splitmix64's increment (the golden ratio in 64 bits).
const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

impl Dice {
    /// Dice that fail with probability `fail_rate` (0.0 never draws).
    pub(super) fn new(seed: u64, fail_rate: f64) -> Dice {
        Dice { counter: AtomicU64::new(seed), fail_rate }
    }

    /// One draw: true with probability `fail_rate`.
    pub(super) fn fails(&self) -> bool {
        if self.fail_rate <= 0.0 {
            return false;
        }
        let bits = mix64(self.counter.fetch_add(GOLDEN_GAMMA, Ordering::Relaxed).wrapping_add(GOLDEN_GAMMA));
        // The top 53 bits as a uniform float in [0, 1).
        let unit = (bits >> 11) as f64 / (1u64 << 53) as f64;
        unit < self.fail_rate
    }
}

/// splitmix64's output function; also used to derive per-transfer decoration.
pub(super) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn request(payee: &str, amount: &str) -> TransferRequest {
        TransferRequest {
            home_transaction_id: "h".into(),
            payee_id: payee.into(),
            amount: amount.into(),
            currency: "XOF".into(),
            body: Map::new(),
        }
    }

    fn start(payee: &str, amount: &str, accept: Accept) -> Live {
        Live::start(Uuid::new_v4(), request(payee, amount), SystemTime::now(), accept, &Dice::new(1, 0.0))
    }

    #[test]
    fn each_trigger_fails_at_its_own_stage_in_every_accept_mode() {
        for accept in [Accept::None, Accept::Party, Accept::Quote, Accept::Both] {
            assert_eq!(start("22500000404", "100", accept).phase, Phase::PartyFailed(PARTY_NOT_FOUND));
            assert_eq!(start("22500000408", "100", accept).phase, Phase::PartyTimeout);
        }
        assert_eq!(start("22507000002", "666", Accept::None).phase, Phase::QuoteFailed(QUOTE_REJECTED));
        assert_eq!(start("22507000002", "13", Accept::None).phase, Phase::TransferFailed(TRANSFER_REJECTED));
        assert_eq!(start("22507000002", "4001", Accept::None).phase, Phase::TransferFailed(PAYER_LIQUIDITY));
        assert_eq!(start("22507000002", "408", Accept::None).phase, Phase::CommittedUnseen);
        assert_eq!(start("22507000002", "13.5", Accept::None).phase, Phase::Committed);
    }

    #[test]
    fn both_mode_stops_at_party_then_quote_and_the_quote_trigger_fires_after_party_acceptance() {
        let dice = Dice::new(1, 0.0);
        let now = SystemTime::now();
        let mut live = start("22507000002", "666", Accept::Both);
        assert_eq!(live.phase, Phase::WaitingParty);
        assert!(live.resume(Continuation::AcceptQuote(true), Accept::Both, &dice, now).is_err());
        live.resume(Continuation::AcceptParty(true), Accept::Both, &dice, now).expect("accepts");
        assert_eq!(live.phase, Phase::QuoteFailed(QUOTE_REJECTED));

        let mut live = start("22507000002", "100", Accept::Both);
        live.resume(Continuation::AcceptParty(true), Accept::Both, &dice, now).expect("party");
        assert_eq!(live.phase, Phase::WaitingQuote);
        live.resume(Continuation::AcceptQuote(true), Accept::Both, &dice, now).expect("quote");
        assert_eq!(live.phase, Phase::Committed);
        assert!(live.resume(Continuation::AcceptQuote(true), Accept::Both, &dice, now).is_err());
    }

    #[test]
    fn declining_ends_the_transfer_unpaid() {
        let dice = Dice::new(1, 0.0);
        let mut live = start("22507000002", "100", Accept::Quote);
        live.resume(Continuation::AcceptQuote(false), Accept::Quote, &dice, SystemTime::now()).expect("decline");
        assert_eq!(live.phase, Phase::Declined);
        assert!(!live.phase.is_paid() && !live.phase.prepared());
    }

    #[test]
    fn fail_rate_is_seeded_and_roughly_right() {
        let draws = |seed| {
            let dice = Dice::new(seed, 0.25);
            (0..10_000).map(|_| dice.fails()).collect::<Vec<_>>()
        };
        assert_eq!(draws(7), draws(7));
        assert_ne!(draws(7), draws(8));
        let failures = draws(7).iter().filter(|f| **f).count();
        assert!((2_200..2_800).contains(&failures), "{failures}");
        assert!((0..1000).all(|_| Dice::new(3, 1.0).fails()));
        assert!((0..1000).all(|_| !Dice::new(3, 0.0).fails()));
    }
}
