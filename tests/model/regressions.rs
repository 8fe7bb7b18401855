//! Sequences that found bugs, as they were shrunk, replayed on every run (proptest's
//! own `regressions.txt` keeps seeds, which stop meaning the same sequence as soon as
//! a generator changes; these do not).

use crate::ops::{Adjust, Bulk, Cash, Decision, How, JobAction, Op, P2p, Refers, To};

/// (what it found, SDK mode index, operations after the prelude).
pub fn all() -> Vec<(&'static str, usize, Vec<Op>)> {
    vec![
        (
            "a withdrawal refused for funds stays bound to its key: the same request replays \
             the 422 instead of running again (the rejection was written in a store job that \
             then failed, so it was rolled back)",
            0,
            vec![
                Op::CreateWallet { w: 3, usd: false },
                Op::Cash(Cash { w: 3, withdraw: true, amount: "1", reference: None, key: Some(0) }),
                Op::Again { pick: 0, mutate: false },
            ],
        ),
        (
            "an adjustment refused for an unknown refers_to stays bound to its key: another \
             request under the key is IDEMPOTENCY_KEY_REUSED, not run",
            0,
            vec![
                Op::Adjust(Adjust {
                    maker2: true,
                    w: 0,
                    settlement: false,
                    credit: false,
                    amount: "1",
                    key: Some(2),
                    refers: Refers::Bogus,
                }),
                Op::P2p(P2p {
                    maker2: true,
                    from: 2,
                    to: To::Wallet(0),
                    amount: "1",
                    usd: None,
                    key: Some(2),
                    tid: None,
                }),
            ],
        ),
        (
            "a job cancelled while an item is IN_DOUBT stays PROCESSING until the item is \
             resolved, then ends CANCELLED, its reservation released by the resolution",
            0,
            vec![
                Op::Bulk(Bulk { source: 0, lines: vec![(To::Wallet(3), "408")], decision: Decision::Approve }),
                Op::Job { pick: 0, action: JobAction::Cancel },
                Op::Resolve { pick: 0, how: How::HubOwnId, via_item: false, open: true },
            ],
        ),
    ]
}
