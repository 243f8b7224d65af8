//! What a model call costs, for its budgets and its audit record.
//!
//! Before a request is forwarded, its maximum is reserved in every budget that applies
//! ([`Metering::admit`]): the prompt's estimate and the most the upstream may generate.
//! When the request sets no maximum and the deployment's guardrail set none, Gatehouse
//! chooses one — `default_max_tokens`, or less if the narrowest token limit leaves less
//! room after the prompt — and writes it into the request as `max_tokens`, so that the
//! upstream cannot generate more than was reserved. Streamed requests always ask the
//! upstream for its usage report ([`ask_for_usage`]).
//!
//! When the answer is known — or known never to come — the call is charged ([`Charge`]):
//! - `measured`: the upstream's `usage` (its `total_tokens`);
//! - `estimated`: no usage in an answer that was read to its end: the prompt's estimate
//!   and the generated text at 4 bytes a token ([`budget::tokens_of_text`]);
//! - `reserved`: Gatehouse stopped reading an upstream that may still be generating (a
//!   timeout, a broken connection, a client gone for longer than the drain allows): the
//!   reservation, the most it may have used;
//! - `none`: the upstream refused the request (an error status without usage) or was
//!   never reached.
//!
//! and the reservation is settled to that charge ([`budget::Budgets::settle`]). The audit
//! record carries the charge, its source and the reservation.

use super::audit::GatewayAuditRecord;
use super::budget::{self, Applicable, OverBudget, Reservation};
use super::error::GatewayError;
use super::openai;
use super::proxy::{StreamEnd, Usage, generated_text_bytes};
use crate::AppState;
use serde_json::{Map, Value};

/// How a call's tokens were counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    /// The upstream's usage report.
    Measured,
    /// Estimated from the prompt and the generated text.
    Estimated,
    /// The reservation: the most the request could use.
    Reserved,
    /// Nothing was generated.
    Nothing,
}

impl Source {
    fn word(self) -> &'static str {
        match self {
            Source::Measured => "measured",
            Source::Estimated => "estimated",
            Source::Reserved => "reserved",
            Source::Nothing => "none",
        }
    }
}

/// What a call is charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Charge {
    tokens: u64,
    source: Source,
    usage: Option<Usage>,
}

/// One model call's reservation and what it needs to charge the answer.
#[derive(Debug, Default)]
pub(super) struct Metering {
    reservation: Reservation,
    prompt_estimate: u64,
    /// A token limit applies: the reservation holds tokens and is settled.
    counts_tokens: bool,
    /// The endpoint generates text (not embeddings).
    generates: bool,
    /// `max_tokens` was written into the request.
    pub body_changed: bool,
}

impl Metering {
    /// Admits the request against `budgets` (see the module docs), reserving its maximum.
    pub(super) fn admit(
        state: &AppState,
        budgets: &[Applicable],
        json: &mut Map<String, Value>,
        generates: bool,
        now_ms: i64,
    ) -> Result<Metering, GatewayError> {
        let mut m = Metering {
            prompt_estimate: budget::prompt_estimate(json),
            generates,
            ..Metering::default()
        };
        if budgets.is_empty() {
            return Ok(m);
        }
        let narrowest = budgets
            .iter()
            .flat_map(|b| [b.limits.tokens_per_minute, b.limits.tokens_per_day])
            .flatten()
            .min();
        let tokens = match narrowest {
            None => 0,
            Some(limit) => {
                m.counts_tokens = true;
                let default_max = state.gateway.settings().default_max_tokens;
                m.reserve_for(json, limit, default_max)
            }
        };
        m.reservation = state
            .gateway
            .budgets
            .admit(budgets, tokens, now_ms)
            .map_err(over_budget)?;
        Ok(m)
    }

    /// The tokens to reserve: the prompt's estimate and the most the upstream may
    /// generate (`ai:MaxTokens`, [`openai::generation_bound`]), choosing (and writing into
    /// the request) a maximum when it sets none. Only lowers what the request may
    /// generate, so the decision made on it stands.
    fn reserve_for(
        &mut self,
        json: &mut Map<String, Value>,
        narrowest: u64,
        default_max: u64,
    ) -> u64 {
        let completion = if !self.generates {
            0
        } else if let Some(n) = openai::generation_bound(json) {
            n
        } else {
            let answers = openai::choices(json);
            // At least 1: a prompt that fills the limit alone is refused as too large.
            let max = default_max
                .min(narrowest.saturating_sub(self.prompt_estimate) / answers)
                .max(1);
            json.insert("max_tokens".into(), max.into());
            self.body_changed = true;
            max.saturating_mul(answers)
        };
        self.prompt_estimate.saturating_add(completion).max(1)
    }

    fn measured(u: Usage) -> Charge {
        Charge {
            tokens: u.total,
            source: Source::Measured,
            usage: Some(u),
        }
    }

    fn estimated(&self, text_bytes: u64) -> Charge {
        let generated = if self.generates {
            budget::tokens_of_text(text_bytes)
        } else {
            0
        };
        Charge {
            tokens: self.prompt_estimate.saturating_add(generated),
            source: Source::Estimated,
            usage: None,
        }
    }

    /// The upstream may have generated more than was seen: the reservation when there is
    /// one to keep, else the best estimate.
    fn unseen(&self, text_bytes: u64) -> Charge {
        if self.counts_tokens {
            Charge {
                tokens: self.reservation.tokens(),
                source: Source::Reserved,
                usage: None,
            }
        } else {
            self.estimated(text_bytes)
        }
    }

    const NOTHING: Charge = Charge {
        tokens: 0,
        source: Source::Nothing,
        usage: None,
    };

    /// A whole answer (`answer`: its JSON, if it was JSON).
    pub(super) fn answered(&self, success: bool, answer: Option<&Value>) -> Charge {
        match (answer.and_then(Usage::from_answer), answer) {
            (Some(u), _) => Self::measured(u),
            (None, _) if !success => Self::NOTHING,
            (None, Some(v)) => self.estimated(generated_text_bytes(v)),
            (None, None) => self.unseen(0),
        }
    }

    /// A streamed answer, however it ended. A usage seen in a stream left unfinished is
    /// a running total (some servers add one to every chunk): at least that is charged.
    pub(super) fn streamed(&self, end: &StreamEnd) -> Charge {
        match (end.usage, end.finished) {
            (Some(u), true) => Self::measured(u),
            (None, true) => self.estimated(end.text_bytes),
            (usage, false) => {
                let mut c = self.unseen(end.text_bytes);
                c.tokens = c.tokens.max(usage.map_or(0, |u| u.total));
                c
            }
        }
    }

    /// No answer: the upstream failed or timed out.
    pub(super) fn unanswered(&self, maybe_generating: bool) -> Charge {
        if maybe_generating {
            self.unseen(0)
        } else {
            Self::NOTHING
        }
    }

    /// Settles the reservation to `charge` and notes both in the audit record.
    pub(super) fn settle(&self, state: &AppState, charge: Charge, record: &mut GatewayAuditRecord) {
        if self.counts_tokens {
            state.gateway.budgets.settle(
                &self.reservation,
                charge.tokens,
                state.clock.now().timestamp_millis(),
            );
            record.reserved_tokens = Some(self.reservation.tokens());
        }
        if let Some(u) = charge.usage {
            record.prompt_tokens = Some(u.prompt);
            record.completion_tokens = Some(u.completion);
            record.total_tokens = Some(u.total);
        }
        record.charged_tokens = Some(charge.tokens);
        record.usage_source = Some(charge.source.word().to_owned());
    }
}

/// Makes a streamed request ask the upstream for its usage report, whatever the caller
/// set; returns whether the caller asked for it (`stream_options.include_usage: true`),
/// that is whether it gets the report.
pub(super) fn ask_for_usage(json: &mut Map<String, Value>) -> Result<bool, GatewayError> {
    let bad = || {
        GatewayError::invalid_param(
            "stream_options",
            "stream_options must be an object whose include_usage is true or false.",
        )
    };
    let asked = match json.get_mut("stream_options") {
        None | Some(Value::Null) => {
            json.insert(
                "stream_options".into(),
                serde_json::json!({"include_usage": true}),
            );
            false
        }
        Some(Value::Object(o)) => {
            let asked = match o.get("include_usage") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(bad()),
            };
            o.insert("include_usage".into(), Value::Bool(true));
            asked
        }
        Some(_) => return Err(bad()),
    };
    Ok(asked)
}

/// A refusal in OpenAI's shape: 429 with `Retry-After`, or, for a request that could
/// never fit, 400 on `max_tokens` (waiting would not help).
fn over_budget(o: OverBudget) -> GatewayError {
    match o.retry_after {
        Some(secs) => GatewayError::rate_limited(
            format!("Rate limit reached for {}: {}.", o.budget, o.limit),
            secs,
        ),
        None => {
            let mut e = GatewayError::invalid_param(
                "max_tokens",
                format!(
                    "This request may use up to {} tokens, more than the {} of {} ({}); \
                     lower max_tokens (or n).",
                    o.needed, o.limit, o.budget, o.allowed
                ),
            );
            e.code = "request_exceeds_budget";
            e
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn every_stream_asks_for_usage_and_only_an_explicit_true_is_the_callers() {
        for (options, asked) in [
            (None, false),
            (Some(Value::Null), false),
            (Some(serde_json::json!({})), false),
            (Some(serde_json::json!({"include_usage": false})), false),
            (Some(serde_json::json!({"include_usage": null})), false),
            (Some(serde_json::json!({"include_usage": true})), true),
        ] {
            let mut json = body(serde_json::json!({"model": "m", "stream": true}));
            if let Some(o) = options.clone() {
                json.insert("stream_options".into(), o);
            }
            assert_eq!(ask_for_usage(&mut json).unwrap(), asked, "{options:?}");
            assert_eq!(json["stream_options"]["include_usage"], true);
        }
        // Other stream options are kept.
        let mut json = body(serde_json::json!({"stream_options": {"include_obfuscation": false}}));
        ask_for_usage(&mut json).unwrap();
        assert_eq!(
            Value::Object(json),
            serde_json::json!({"stream_options": {"include_obfuscation": false, "include_usage": true}})
        );
        for bad in [
            serde_json::json!("yes"),
            serde_json::json!({"include_usage": "yes"}),
        ] {
            let mut json = body(serde_json::json!({"stream_options": bad}));
            assert_eq!(
                ask_for_usage(&mut json).unwrap_err().param,
                Some("stream_options")
            );
        }
    }

    #[test]
    fn a_request_without_a_maximum_gets_one_that_fits() {
        let mut m = Metering {
            prompt_estimate: 40,
            generates: true,
            ..Metering::default()
        };
        let mut json = body(serde_json::json!({"n": 2}));
        // 4096 by default, but the narrowest limit leaves (300 - 40) / 2 = 130 an answer.
        assert_eq!(m.reserve_for(&mut json, 300, 4096), 40 + 260);
        assert_eq!(json["max_tokens"], 130);
        assert!(m.body_changed);
        let mut json = body(serde_json::json!({}));
        assert_eq!(m.reserve_for(&mut json, 1_000_000, 4096), 4136);
        // Set by the caller: reserved as set (the budget decides whether it fits).
        let mut json = body(serde_json::json!({"max_completion_tokens": 5000}));
        assert_eq!(m.reserve_for(&mut json, 300, 4096), 5040);
        assert!(!json.contains_key("max_tokens"));
        // Embeddings generate nothing.
        m.generates = false;
        assert_eq!(
            m.reserve_for(&mut body(serde_json::json!({})), 300, 4096),
            40
        );
    }

    #[test]
    fn the_charge_follows_what_is_known() {
        let m = Metering {
            reservation: Reservation::default(),
            prompt_estimate: 10,
            counts_tokens: true,
            generates: true,
            body_changed: false,
        };
        let usage = serde_json::json!({"usage": {"prompt_tokens": 3, "completion_tokens": 4}});
        assert_eq!(m.answered(true, Some(&usage)).tokens, 7);
        assert_eq!(m.answered(false, Some(&usage)).source, Source::Measured);
        let text = serde_json::json!({"choices": [{"message": {"content": "12345678"}}]});
        assert_eq!(
            m.answered(true, Some(&text)),
            Charge {
                tokens: 12,
                source: Source::Estimated,
                usage: None
            }
        );
        assert_eq!(m.answered(false, Some(&text)).source, Source::Nothing);
        assert_eq!(m.answered(true, None).source, Source::Reserved);
        assert_eq!(m.unanswered(false).source, Source::Nothing);
        assert_eq!(m.unanswered(true).source, Source::Reserved);
        let end = |finished| StreamEnd {
            usage: None,
            text_bytes: 9,
            finished,
            how: "client_closed",
        };
        assert_eq!(m.streamed(&end(true)).tokens, 13);
        assert_eq!(m.streamed(&end(false)).source, Source::Reserved);
        let running = StreamEnd {
            usage: Some(Usage {
                prompt: 5,
                completion: 20,
                total: 25,
            }),
            ..end(false)
        };
        assert_eq!(m.streamed(&running).tokens, 25);
        assert_eq!(
            m.streamed(&StreamEnd {
                finished: true,
                ..running
            })
            .source,
            Source::Measured
        );
        // Without a token budget there is no reservation to keep: the estimate.
        let free = Metering {
            counts_tokens: false,
            ..m
        };
        assert_eq!(free.streamed(&end(false)).source, Source::Estimated);
    }
}
