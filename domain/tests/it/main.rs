//! Property tests of what hooklog's pure core does with input from outside: the
//! `X-Hub-Signature-256` check (`signature`), GitLab's `webhook-signature` (`gitlab`), the
//! delivery headers (`envelope`), the two body
//! formats (`payload`) and the payloads of the events hooklog acts on (`events`). Each property
//! says, for every input its strategy draws, that the answer is a typed value or a typed error
//! (never a panic), and which one; where a positive law holds (a signature verifies with its own
//! secret, an envelope keeps its values) it is checked too.
//!
//! Inputs are drawn near where mistakes hide, not only at random: GitHub's own payloads from the
//! vendored `@octokit/webhooks-examples`, edited (wrong types in known fields, removed fields,
//! numbers over `u64::MAX`, unicode, long strings), cut short or padded (`mutate`), JSON or
//! form-encoded with and without a `payload` field (`support`), and header values at each rule's
//! edges.
//!
//! Cases: 10,000 per property; `HOOKLOG_PROPTEST_CASES=100000 cargo test -p hooklog-domain
//! --test it` runs more. A failure prints the smallest failing input it shrank to and proptest
//! keeps its seed in `tests/proptest-regressions/` (replayed first on the next run);
//! `PROPTEST_RNG_SEED=<u64>` fixes the seed of a whole run.

mod envelope;
mod events;
mod gitlab;
mod mutate;
mod payload;
mod signature;
mod support;
