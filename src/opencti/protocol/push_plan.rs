//! What goes on the push exchange for one bundle (`ARCHITECTURE.md`, "Pushing bundles"):
//! the [`PushMode`] a platform gets from `CONNECTOR_PUSH_STRATEGY` and its version, and the
//! [`PushPlan`] of a bundle: one message (the worker splits it and announces the
//! expectations) or pycti's pieces after `addExpectations(<pieces>)`. Pure; the
//! publishing is [`super::push`].

use super::push::{push_body, Piece, PushContext, MAX_MESSAGE_BYTES};
use crate::config::daemon::PushStrategy;
use serde_json::Value;

/// The strategy chosen for one platform, and what its push messages may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushMode {
    /// Bundles go as one message (else as pieces).
    pub bundle: bool,
    /// The platform's worker reads `no_split` (7.260515 on): messages carry `no_split:false`.
    pub no_split_field: bool,
}

/// `major.minor` of a platform version (`6.4.11`, `7.261026.0`), `None` when unreadable.
pub fn platform_release(version: &str) -> Option<(u64, u64)> {
    let mut parts = version.trim().split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |m| m.parse().ok())?;
    Some((major, minor))
}

impl PushMode {
    /// The mode of `strategy` (`CONNECTOR_PUSH_STRATEGY`) for a platform of `version`
    /// (`about { version }`). The worker of every platform splits a multi-object message
    /// itself at least since 6.4 (its `stixBundlePush` hands it whole bundles), so `auto`
    /// sends whole bundles from 6.4 on and pycti's pieces to older or unreadable versions.
    pub fn for_platform(strategy: PushStrategy, version: &str) -> PushMode {
        let release = platform_release(version);
        let bundle = match strategy {
            PushStrategy::Bundle => true,
            PushStrategy::Pieces => false,
            PushStrategy::Auto => release.is_some_and(|r| r >= (6, 4)),
        };
        PushMode {
            bundle,
            no_split_field: release.is_some_and(|r| r >= (7, 260_515)),
        }
    }
}

/// The messages of one bundle on the push exchange, and the `addExpectations` the
/// connector announces first (`None`: none, the worker adds them).
pub struct PushPlan {
    pub expectations: Option<usize>,
    pub messages: Vec<Piece>,
}

/// What to publish for `bundle`. In bundle mode a bundle of several objects is one
/// message (`no_split:false` where the platform reads it) and no expectation is announced:
/// the worker splits it and adds one expectation per object. A bundle of one object, in
/// both modes, is one message after `addExpectations(1)`: the worker imports it without
/// announcing anything. pycti's pieces (one object per message, dependencies first,
/// `addExpectations(<pieces>)`) are used in pieces mode and for a bundle whose message
/// would be larger than `max_bytes`.
pub fn plan_messages(
    bundle: &Value,
    mode: PushMode,
    ctx: &PushContext,
    max_bytes: usize,
) -> PushPlan {
    let objects = bundle["objects"].as_array().map_or(0, Vec::len);
    if mode.bundle && objects > 1 {
        let body = push_body(bundle, 1, ctx);
        if body.len() <= max_bytes {
            return PushPlan {
                expectations: None,
                messages: vec![Piece { level: 0, body }],
            };
        }
        tracing::info!(
            bytes = body.len(),
            limit = max_bytes,
            objects,
            "bundle too large for one message: sent as one message per object"
        );
    }
    let pieces = super::split::split(bundle);
    // Pieces that do not depend on each other are confirmed together.
    let messages: Vec<Piece> = pieces
        .iter()
        .zip(super::split::batches(&pieces))
        .enumerate()
        .map(|(i, (p, level))| Piece {
            level,
            body: push_body(p, i + 1, ctx),
        })
        .collect();
    PushPlan {
        expectations: Some(messages.len()),
        messages,
    }
}

/// Test hook (cargo feature `test-hooks` only): `IVRE_CONNECTOR_TEST_PUSH_MAX_BYTES`
/// lowers the size of the largest message sent whole, so that a test can send a bundle
/// that does not fit.
#[cfg(feature = "test-hooks")]
pub fn max_message_bytes() -> usize {
    std::env::var("IVRE_CONNECTOR_TEST_PUSH_MAX_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(MAX_MESSAGE_BYTES)
}

/// Without the `test-hooks` feature (release builds): [`MAX_MESSAGE_BYTES`].
#[cfg(not(feature = "test-hooks"))]
pub fn max_message_bytes() -> usize {
    MAX_MESSAGE_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_mode_follows_the_strategy_and_the_platform_version() {
        let mode = |s: PushStrategy, v: &str| {
            let m = PushMode::for_platform(s, v);
            (m.bundle, m.no_split_field)
        };
        assert_eq!(mode(PushStrategy::Auto, "6.3.9"), (false, false));
        assert_eq!(mode(PushStrategy::Auto, "6.4.11"), (true, false));
        assert_eq!(mode(PushStrategy::Auto, "6.9.29"), (true, false));
        assert_eq!(mode(PushStrategy::Auto, "7.260224.0"), (true, false));
        assert_eq!(mode(PushStrategy::Auto, "7.260515.0"), (true, true));
        assert_eq!(mode(PushStrategy::Auto, "not-a-version"), (false, false));
        assert_eq!(mode(PushStrategy::Auto, ""), (false, false));
        assert_eq!(mode(PushStrategy::Pieces, "7.261026.0"), (false, true));
        assert_eq!(mode(PushStrategy::Bundle, "6.0.10"), (true, false));
    }

    #[test]
    fn bundles_go_whole_unless_too_large_or_single() {
        use base64::Engine;
        let bundle = json!({"type": "bundle", "id": "bundle--1", "objects": [
            {"type": "identity", "id": "identity--1"},
            {"type": "ipv4-addr", "id": "ipv4-addr--1", "created_by_ref": "identity--1"},
            {"type": "autonomous-system", "id": "autonomous-system--1"},
            {"type": "relationship", "id": "relationship--1", "source_ref": "ipv4-addr--1", "target_ref": "autonomous-system--1"},
        ]});
        let ctx = PushContext {
            work_id: Some("w".into()),
            no_split_field: true,
            ..PushContext::default()
        };
        let decode = |p: &Piece| {
            let body: Value = serde_json::from_slice(&p.body).unwrap();
            let content = base64::engine::general_purpose::STANDARD
                .decode(body["content"].as_str().unwrap())
                .unwrap();
            (body, serde_json::from_slice::<Value>(&content).unwrap())
        };
        let whole = PushMode {
            bundle: true,
            no_split_field: true,
        };
        let plan = plan_messages(&bundle, whole, &ctx, MAX_MESSAGE_BYTES);
        assert_eq!(plan.expectations, None, "the worker announces them");
        assert_eq!(plan.messages.len(), 1);
        let (body, content) = decode(&plan.messages[0]);
        assert_eq!(body["no_split"], false);
        assert_eq!(content, bundle);
        // Too large for one message: pycti's pieces, announced.
        let size = plan.messages[0].body.len();
        let plan = plan_messages(&bundle, whole, &ctx, size - 1);
        assert_eq!(plan.expectations, Some(4));
        assert_eq!(plan.messages.len(), 4);
        assert!(plan
            .messages
            .iter()
            .all(|p| decode(p).1["objects"].as_array().unwrap().len() == 1));
        assert_eq!(plan_messages(&bundle, whole, &ctx, size).messages.len(), 1);
        // Pieces mode.
        let pieces = PushMode {
            bundle: false,
            no_split_field: false,
        };
        let plan = plan_messages(&bundle, pieces, &ctx, MAX_MESSAGE_BYTES);
        assert_eq!(plan.expectations, Some(4));
        assert_eq!(decode(&plan.messages[3]).0["action_sequence"], 4);
        let older = PushContext {
            no_split_field: false,
            ..ctx.clone()
        };
        let plan = plan_messages(&bundle, pieces, &older, MAX_MESSAGE_BYTES);
        assert!(decode(&plan.messages[0]).0.get("no_split").is_none());
        // One object: one message after addExpectations(1) in both modes.
        let single = json!({"type": "bundle", "id": "bundle--2", "objects": [{"type": "identity", "id": "identity--1"}]});
        for mode in [whole, pieces] {
            let plan = plan_messages(&single, mode, &ctx, MAX_MESSAGE_BYTES);
            assert_eq!((plan.expectations, plan.messages.len()), (Some(1), 1));
        }
    }
}
