//! METADATA (IRCv3 `draft/metadata-3`): GET, LIST, SET, CLEAR on users and
//! channels, SUB, UNSUB, SUBS, SYNC; and the metadata a JOIN, WHOIS or the
//! registration burst brings.

use super::query::middle;
use super::{CommandError, Ctx, Flow};
use crate::irc::state::cap;
use crate::state::ChangeError;
use crate::state::metadata::{
    ClearMetadata, MetaTarget, Metadata, SetMetadata, Subscribe, Unsubscribe, valid_key,
};
use bavard_proto::message::Message;
use bavard_proto::numeric::*;

/// The `draft/metadata-3` capability's value: what clients must know.
pub fn cap_value(cfg: &crate::config::CoreConfig) -> String {
    let l = &cfg.limits;
    format!(
        "before-connect,max-subs={},max-keys={},max-value-bytes={}",
        l.metadata_subs, l.metadata_keys, l.metadata_value_bytes
    )
}

pub fn metadata(ctx: &mut Ctx<'_>, m: &Message<'_>) -> Result<Flow, CommandError> {
    let target = &*m.params[0];
    let sub = m.params[1].to_ascii_uppercase();
    let args: Vec<&str> = m.params[2..].iter().map(|p| &**p).collect();
    let t = if target == "*" {
        MetaTarget::Me
    } else if target.starts_with('#') {
        MetaTarget::Channel(target.to_string())
    } else {
        MetaTarget::Nick(target.to_string())
    };
    let subscriptions = matches!(sub.as_str(), "SUB" | "UNSUB" | "SUBS");
    // Before registration a client has no name but `*` (before-connect).
    if !ctx.st.registered() && t != MetaTarget::Me && !subscriptions {
        let shown = middle(target).to_string();
        return Err(ChangeError::MetadataNoPermission(shown, "*".into()).into());
    }
    let need_keys = matches!(sub.as_str(), "GET" | "SET" | "SUB" | "UNSUB");
    if need_keys && args.is_empty() {
        return Err(CommandError::NeedMoreParams);
    }
    match sub.as_str() {
        "GET" => get(ctx, &t, &args),
        "LIST" => list(ctx, &t),
        "SET" => set(ctx, t, args[0], m.param(3)),
        "CLEAR" => clear(ctx, t),
        "SUB" => subscribe(ctx, &args),
        "UNSUB" => unsubscribe(ctx, &args),
        "SUBS" => subs(ctx),
        "SYNC" => sync(ctx, &t),
        _ => {
            let shown = middle(&m.params[1]).to_string();
            ctx.r.standard(
                "FAIL",
                "METADATA",
                "SUBCOMMAND_INVALID",
                &[&shown],
                "Invalid subcommand",
            );
            Ok(Flow::Continue)
        }
    }
}

/// `RPL_KEYVALUE` for the requester: `761 <nick> <target> <key> * :<value>`.
fn key_value(ctx: &mut Ctx<'_>, target: &str, key: &str, value: &str) {
    ctx.r.num(RPL_KEYVALUE, &[target, key, "*", value]);
}

fn invalid_key(ctx: &mut Ctx<'_>, key: &str) {
    let shown = middle(key).to_string();
    ctx.r
        .standard("FAIL", "METADATA", "KEY_INVALID", &[&shown], "Invalid key");
}

fn get(ctx: &mut Ctx<'_>, t: &MetaTarget, keys: &[&str]) -> Result<Flow, CommandError> {
    let (shown, md) = ctx.net.metadata_for(ctx.st.id(), t)?;
    let max = ctx.cfg.limits.metadata_key_bytes;
    ctx.r.start_batch("metadata", &[&shown]);
    for key in keys {
        if !valid_key(key, max) {
            invalid_key(ctx, key);
        } else if let Some(v) = md.get(key) {
            key_value(ctx, &shown, key, v);
        } else {
            ctx.r.num(RPL_KEYNOTSET, &[&shown, key]);
        }
    }
    ctx.r.end_batch();
    Ok(Flow::Continue)
}

fn list(ctx: &mut Ctx<'_>, t: &MetaTarget) -> Result<Flow, CommandError> {
    let (shown, md) = ctx.net.metadata_for(ctx.st.id(), t)?;
    ctx.r.start_batch("metadata", &[&shown]);
    for (k, v) in md.iter() {
        key_value(ctx, &shown, k, v);
    }
    ctx.r.end_batch();
    Ok(Flow::Continue)
}

fn set(
    ctx: &mut Ctx<'_>,
    target: MetaTarget,
    key: &str,
    value: Option<&str>,
) -> Result<Flow, CommandError> {
    if !valid_key(key, ctx.cfg.limits.metadata_key_bytes) {
        invalid_key(ctx, key);
        return Ok(Flow::Continue);
    }
    let shown = ctx.apply(SetMetadata {
        by: ctx.st.id(),
        target,
        key: key.to_string(),
        value: value.map(str::to_string),
    })?;
    match value {
        Some(v) => key_value(ctx, &shown, key, v),
        None => ctx.r.num(RPL_KEYNOTSET, &[&shown, key]),
    }
    Ok(Flow::Continue)
}

fn clear(ctx: &mut Ctx<'_>, target: MetaTarget) -> Result<Flow, CommandError> {
    let by = ctx.st.id();
    let (shown, keys) = ctx.apply(ClearMetadata { by, target })?;
    ctx.r.start_batch("metadata", &[&shown]);
    for k in &keys {
        ctx.r.num(RPL_KEYNOTSET, &[&shown, k]);
    }
    ctx.r.end_batch();
    Ok(Flow::Continue)
}

/// Replies `numeric` with `keys` as parameters, as many lines as needed to
/// stay within 512 bytes.
fn keys_lines(ctx: &mut Ctx<'_>, numeric: Numeric, keys: &[String]) {
    let room = 512usize.saturating_sub(ctx.r.server().len() + ctx.r.nick.len() + 20);
    let mut line: Vec<&str> = Vec::new();
    let mut len = 0;
    for k in keys {
        if !line.is_empty() && len + 1 + k.len() > room {
            ctx.r.num(numeric, &line);
            line.clear();
            len = 0;
        }
        len += k.len() + 1;
        line.push(k);
    }
    if !line.is_empty() {
        ctx.r.num(numeric, &line);
    }
}

fn subscribe(ctx: &mut Ctx<'_>, keys: &[&str]) -> Result<Flow, CommandError> {
    let id = ctx.st.id();
    let keys = keys.iter().map(|k| k.to_string()).collect();
    let done = ctx.apply(Subscribe { id, keys })?;
    keys_lines(ctx, RPL_METADATASUBOK, &done.ok);
    for k in &done.invalid {
        invalid_key(ctx, k);
    }
    if let Some(k) = &done.refused {
        let shown = middle(k).to_string();
        ctx.r.standard(
            "FAIL",
            "METADATA",
            "TOO_MANY_SUBS",
            &[&shown],
            "Too many subscriptions",
        );
    }
    if ctx.st.registered() && !done.ok.is_empty() {
        sync_later(ctx, &done.ok);
    }
    Ok(Flow::Continue)
}

/// After a subscription: `RPL_METADATASYNCLATER` for each of the user's
/// channels where the new keys have values (on it or its members), rather
/// than every value at once; the client asks with `METADATA #chan SYNC`.
fn sync_later(ctx: &mut Ctx<'_>, keys: &[String]) {
    let Some(u) = ctx.net.user(ctx.st.id()) else {
        return;
    };
    let has = |md: &Metadata| keys.iter().any(|k| md.get(k).is_some());
    let names: Vec<String> = u
        .channels
        .iter()
        .filter_map(|key| ctx.net.channel(key))
        .filter(|ch| {
            has(&ch.metadata)
                || ch
                    .members
                    .iter()
                    .any(|m| ctx.net.user(m.id).is_some_and(|mu| has(mu.metadata())))
        })
        .map(|ch| ch.name.to_string())
        .collect();
    for name in names {
        ctx.r.num(RPL_METADATASYNCLATER, &[&name]);
    }
}

fn unsubscribe(ctx: &mut Ctx<'_>, keys: &[&str]) -> Result<Flow, CommandError> {
    let id = ctx.st.id();
    let keys = keys.iter().map(|k| k.to_string()).collect();
    let (ok, invalid) = ctx.apply(Unsubscribe { id, keys })?;
    keys_lines(ctx, RPL_METADATAUNSUBOK, &ok);
    for k in &invalid {
        invalid_key(ctx, k);
    }
    Ok(Flow::Continue)
}

fn subs(ctx: &mut Ctx<'_>) -> Result<Flow, CommandError> {
    let keys = ctx
        .net
        .user(ctx.st.id())
        .map(|u| u.subscriptions().to_vec())
        .unwrap_or_default();
    ctx.r.start_batch("metadata-subs", &[]);
    keys_lines(ctx, RPL_METADATASUBS, &keys);
    ctx.r.end_batch();
    Ok(Flow::Continue)
}

/// `METADATA <target> SYNC`: the subscribed keys of a user, or of a channel
/// and its members.
fn sync(ctx: &mut Ctx<'_>, t: &MetaTarget) -> Result<Flow, CommandError> {
    let (shown, _) = ctx.net.metadata_for(ctx.st.id(), t)?;
    let pairs = match t {
        MetaTarget::Channel(_) => channel_pairs(ctx, &shown),
        _ => ctx
            .net
            .find_nick(&shown)
            .or_else(|| ctx.net.user(ctx.st.id()))
            .map(|u| subscribed_pairs(ctx, &shown, u.metadata()))
            .unwrap_or_default(),
    };
    ctx.r.start_batch("metadata", &[&shown]);
    for (target, k, v) in &pairs {
        key_value(ctx, target, k, v);
    }
    ctx.r.end_batch();
    Ok(Flow::Continue)
}

/// The requester's subscribed keys of `md`, as (target, key, value).
fn subscribed_pairs(ctx: &Ctx<'_>, target: &str, md: &Metadata) -> Vec<(String, String, String)> {
    let Some(me) = ctx.net.user(ctx.st.id()) else {
        return Vec::new();
    };
    md.iter()
        .filter(|(k, _)| me.is_subscribed(k))
        .map(|(k, v)| (target.to_string(), k.to_string(), v.to_string()))
        .collect()
}

/// The subscribed keys of a channel and of its members but the requester.
fn channel_pairs(ctx: &Ctx<'_>, name: &str) -> Vec<(String, String, String)> {
    let Some(ch) = ctx.net.channel(name) else {
        return Vec::new();
    };
    let mut pairs = subscribed_pairs(ctx, &ch.name, &ch.metadata);
    for m in ch.members.iter().filter(|m| m.id != ctx.st.id()) {
        if let Some(u) = ctx.net.user(m.id) {
            pairs.extend(subscribed_pairs(ctx, u.nick(), u.metadata()));
        }
    }
    pairs
}

/// After a JOIN: the channel's and its members' subscribed metadata, in a
/// `metadata` batch, when there is any.
pub fn joined(ctx: &mut Ctx<'_>, name: &str) {
    if ctx.r.caps() & cap::METADATA == 0 {
        return;
    }
    let subscribed = ctx
        .net
        .user(ctx.st.id())
        .is_some_and(|u| !u.subscriptions().is_empty());
    let pairs = if subscribed {
        channel_pairs(ctx, name)
    } else {
        Vec::new()
    };
    if pairs.is_empty() {
        return;
    }
    ctx.r.start_batch("metadata", &[name]);
    for (target, k, v) in &pairs {
        key_value(ctx, target, k, v);
    }
    ctx.r.end_batch();
}

/// In the registration burst: the user's own metadata (set before
/// registration with before-connect), in a `metadata` batch, empty or not.
pub fn registered(ctx: &mut Ctx<'_>) {
    if ctx.r.caps() & cap::METADATA == 0 {
        return;
    }
    let Some(u) = ctx.net.user(ctx.st.id()) else {
        return;
    };
    let nick = u.nick().to_string();
    let md = u.metadata().clone();
    ctx.r.start_batch("metadata", &[&nick]);
    for (k, v) in md.iter() {
        key_value(ctx, &nick, k, v);
    }
    ctx.r.end_batch();
}

/// In a WHOIS reply, for a client with the capability: `RPL_WHOISKEYVALUE`
/// for each of the user's keys.
pub fn whois(ctx: &mut Ctx<'_>, nick: &str, md: &Metadata) {
    if ctx.r.caps() & cap::METADATA == 0 {
        return;
    }
    for (k, v) in md.iter() {
        ctx.r.num(RPL_WHOISKEYVALUE, &[nick, k, "*", v]);
    }
}
