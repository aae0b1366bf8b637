//! The console's pages, rendered from what the use cases return: the app list, an app's overview (channels of both
//! protocols, rollouts, releases with their charts, recent events, the newest audit records), the device lookup and
//! the audit log. Action forms appear only for a session whose key may act.

use std::collections::BTreeMap;
use std::fmt::Write;

use updraft_core::{AppCatalog, AuditRecord, ExpoRelease, ExpoReleaseKind, RolloutState, Serve};

use super::charts;
use super::html::{Action, action_form, app_tabs, can_act, escape, percent, stacked, when};
use crate::console_sessions::Session;
use crate::ops::console::{AppOverview, DeviceLookup};

/// The apps the key may see, as cards.
pub(super) fn apps(catalogs: &[std::sync::Arc<AppCatalog>]) -> String {
    let mut cards = String::new();
    for catalog in catalogs {
        let app = catalog.app();
        let expo_channels: std::collections::BTreeSet<&str> =
            catalog.expo_releases().iter().map(|r| r.channel.as_str()).collect();
        let active = catalog.rollouts().filter(|r| r.rollout.is_active()).count();
        let _ = write!(
            cards,
            r#"<a class="card app-card" href="/console/apps/{id}" data-app="{id}"><h2>{name}</h2><div class="mono">{id}</div><div class="meta"><span>{channels} Capgo channels</span><span>{bundles} bundles</span><span>{expo} Expo channels</span>{rollouts}</div></a>"#,
            id = escape(app.id.as_str()),
            name = escape(&app.name),
            channels = catalog.channels().len(),
            bundles = catalog.bundles().count(),
            expo = expo_channels.len(),
            rollouts = if active > 0 {
                format!(r#"<span class="pill active">{active} rolling out</span>"#)
            } else {
                String::new()
            },
        );
    }
    if catalogs.is_empty() {
        cards = r#"<div class="card empty">No apps yet. Create one with <code>POST /app</code>.</div>"#.to_owned();
    }
    format!(r#"<h1>Apps</h1><p class="sub">Every app this key may see.</p><div class="apps">{cards}</div>"#)
}

/// An app's overview.
pub(super) fn overview(session: &Session, overview: &AppOverview, flash: &str) -> String {
    let catalog = &overview.catalog;
    let app_id = catalog.app().id.as_str();
    let devices: u64 = overview.summary.per_bundle.iter().map(|b| b.devices).sum();
    let active = overview.rollouts.iter().filter(|(s, _)| s.rollout.is_active()).count();
    let mut out = app_tabs(app_id, "overview");
    out.push_str(flash);
    let _ = write!(
        out,
        r#"<div class="grid stats"><div class="card stat"><div class="label">Devices on a bundle</div><div class="value" id="stat-devices">{devices}</div><div class="hint">latest install per device</div></div><div class="card stat"><div class="label">Bundles</div><div class="value" id="stat-bundles">{}</div><div class="hint">Capgo releases</div></div><div class="card stat"><div class="label">Channels</div><div class="value" id="stat-channels">{}</div><div class="hint">Capgo · {} Expo</div></div><div class="card stat"><div class="label">Rolling out</div><div class="value" id="stat-rollouts">{active}</div><div class="hint">active rollouts</div></div></div>"#,
        catalog.bundles().count(),
        catalog.channels().len(),
        expo_channels(catalog).len(),
    );
    out.push_str("<section></section>");
    out.push_str(&rollouts(session, overview));
    out.push_str(&capgo_channels(session, catalog));
    out.push_str(&expo_section(session, catalog));
    out.push_str(&releases(overview));
    out.push_str(&events(overview));
    let _ = write!(
        out,
        r#"<section class="card"><header><h2>Recent changes</h2><a href="/console/apps/{}/audit">Full audit log</a></header>{}</section>"#,
        escape(app_id),
        audit_table(&overview.audit)
    );
    out
}

fn rollouts(session: &Session, overview: &AppOverview) -> String {
    let app_id = overview.catalog.app().id.as_str();
    let act = can_act(session);
    let mut body = String::new();
    for (stored, figures) in &overview.rollouts {
        let rollout = &stored.rollout;
        let channel = rollout.channel().as_str();
        let state = updraft_core::rollout_state_label(Some(rollout));
        let pct = rollout.percent().as_percent();
        let channel_field = || vec![("channel", channel.to_owned())];
        let mut actions = String::new();
        if act {
            match rollout.state() {
                RolloutState::Active => {
                    actions.push_str(&action_form(session, Action {
                        app_id,
                        action: "rollout-set",
                        label: "Raise",
                        style: "",
                        confirm: format!("Change the rollout on {channel} to the new percentage?"),
                        fields: channel_field(),
                        inputs: format!(r#"<input class="narrow" type="number" name="percent" min="0" max="100" step="0.01" value="{pct}" aria-label="percent">"#),
                    }));
                    actions.push_str(&action_form(
                        session,
                        Action {
                            app_id,
                            action: "rollout-halt",
                            label: "Halt",
                            style: "danger",
                            confirm: format!(
                                "Halt the rollout on {channel}? Devices on the candidate go back to stable."
                            ),
                            fields: channel_field(),
                            inputs:
                                r#"<input type="text" name="reason" placeholder="Why (optional)" aria-label="reason">"#
                                    .to_owned(),
                        },
                    ));
                    actions.push_str(&complete_form(session, app_id, channel));
                }
                RolloutState::Halted(_) => {
                    actions.push_str(&action_form(
                        session,
                        Action {
                            app_id,
                            action: "rollout-resume",
                            label: "Resume",
                            style: "good",
                            confirm: format!("Offer the candidate on {channel} again, to the same devices?"),
                            fields: channel_field(),
                            inputs: String::new(),
                        },
                    ));
                    actions.push_str(&complete_form(session, app_id, channel));
                }
                RolloutState::Completed { .. } => {}
            }
        }
        let reason = match rollout.state() {
            RolloutState::Halted(halt) => format!(
                r#"<div class="reason" data-halt-reason>Halted by {} at {}: {}</div>"#,
                escape(halt.by.label()),
                when(halt.at),
                escape(&halt.reason)
            ),
            _ => String::new(),
        };
        let _ = write!(
            body,
            r#"<div class="rollout" data-rollout="{ch}" data-state="{state}"><div class="head"><strong>{ch}</strong><span class="pill {state}">{state}</span><span class="mono">{candidate}</span><span style="color:var(--muted)">over {stable}</span></div><div class="figures"><span>Offered to <b data-percent>{pct}</b> %</span><span>Devices on candidate <b>{devices}</b></span><span>Failures <b>{failures}</b></span><span>Failure rate <b>{rate}</b></span><span>Halts past <b>{max}</b> with ≥ {min} devices</span></div><div class="bar"><span style="width:{pct}%"></span></div>{reason}<div class="actions">{actions}</div></div>"#,
            ch = escape(channel),
            candidate = escape(rollout.candidate().label()),
            stable = escape(rollout.stable().label()),
            devices = figures.devices,
            failures = figures.failures,
            rate = percent(figures.failure_rate()),
            max = percent(rollout.policy().max_failure_rate()),
            min = rollout.policy().min_devices(),
        );
    }
    if body.is_empty() {
        body = r#"<div class="empty">No rollouts. Start one to offer a release to a share of a channel's devices first.</div>"#.to_owned();
    }
    let start = if act { start_form(session, &overview.catalog) } else { String::new() };
    format!(
        r#"<section class="card" id="rollouts"><header><div><h2>Rollouts</h2><p>A release offered to a share of a channel's devices, halted automatically when it fails too often.</p></div></header>{body}{start}</section>"#
    )
}

fn complete_form(session: &Session, app_id: &str, channel: &str) -> String {
    action_form(
        session,
        Action {
            app_id,
            action: "rollout-complete",
            label: "Complete",
            style: "light",
            confirm: format!("Make the candidate channel {channel}'s release for every device?"),
            fields: vec![("channel", channel.to_owned())],
            inputs: String::new(),
        },
    )
}

fn start_form(session: &Session, catalog: &AppCatalog) -> String {
    let app_id = catalog.app().id.as_str();
    let mut channels: Vec<String> = catalog.channels().iter().map(|c| c.name.as_str().to_owned()).collect();
    channels.extend(expo_channels(catalog).into_keys());
    channels.sort();
    channels.dedup();
    let options: String = channels.iter().map(|c| format!(r#"<option value="{0}">{0}</option>"#, escape(c))).collect();
    let inputs = format!(
        r#"<select name="channel" aria-label="channel">{options}</select><input type="text" name="candidate" placeholder="bundle version or Expo release/group id" aria-label="candidate" required><input class="narrow" type="number" name="percent" min="0" max="100" step="0.01" value="10" aria-label="percent">"#
    );
    let form = action_form(
        session,
        Action {
            app_id,
            action: "rollout-start",
            label: "Start rollout",
            style: "",
            confirm: "Start this rollout?".to_owned(),
            fields: vec![],
            inputs,
        },
    );
    format!(r#"<div class="body actions" style="border-top:1px solid var(--line)">{form}</div>"#)
}

fn capgo_channels(session: &Session, catalog: &AppCatalog) -> String {
    let app_id = catalog.app().id.as_str();
    let act = can_act(session);
    let mut versions: Vec<&str> = catalog.bundles().map(|b| b.version.as_str()).collect();
    versions.sort_by(|a, b| {
        let parse = |v: &str| semver::Version::parse(v).ok();
        parse(b).cmp(&parse(a)).then(b.cmp(a))
    });
    let mut rows = String::new();
    let mut channels: Vec<_> = catalog.channels().iter().collect();
    channels.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
    let names: Vec<&str> = channels.iter().map(|c| c.name.as_str()).collect();
    for channel in &channels {
        let name = channel.name.as_str();
        let serves = channel.bundle_id.and_then(|id| catalog.bundle(id)).map_or("builtin", |b| b.version.as_str());
        let platforms: Vec<&str> = [
            ("ios", channel.settings.ios),
            ("android", channel.settings.android),
            ("electron", channel.settings.electron),
        ]
        .into_iter()
        .filter(|(_, on)| *on)
        .map(|(p, _)| p)
        .collect();
        let mut actions = String::new();
        if act {
            let version_options: String = std::iter::once("builtin")
                .chain(versions.iter().copied())
                .filter(|v| *v != serves)
                .map(|v| format!(r#"<option value="{0}">{0}</option>"#, escape(v)))
                .collect();
            actions.push_str(&action_form(
                session,
                Action {
                    app_id,
                    action: "channel-rollback",
                    label: "Roll back",
                    style: "warn",
                    confirm: format!(
                        "Point channel {name} at the chosen bundle? Its devices get it on their next check."
                    ),
                    fields: vec![("channel", name.to_owned())],
                    inputs: format!(r#"<select name="version" aria-label="version">{version_options}</select>"#),
                },
            ));
            let targets: String = names
                .iter()
                .filter(|other| **other != name)
                .map(|other| format!(r#"<option value="{0}">{0}</option>"#, escape(other)))
                .collect();
            if !targets.is_empty() && serves != "builtin" {
                actions.push_str(&action_form(
                    session,
                    Action {
                        app_id,
                        action: "promote",
                        label: "Promote",
                        style: "light",
                        confirm: format!("Serve {serves} (from {name}) on the chosen channel too?"),
                        fields: vec![("from_channel", name.to_owned())],
                        inputs: format!(r#"<select name="to_channel" aria-label="to channel">{targets}</select>"#),
                    },
                ));
            }
        }
        let _ = write!(
            rows,
            r#"<tr data-channel="{n}"><td><b>{n}</b></td><td class="mono" data-serves>{s}</td><td>{public}</td><td class="hide-narrow">{platforms}</td><td><div class="actions">{actions}</div></td></tr>"#,
            n = escape(name),
            s = escape(serves),
            public = if channel.settings.public {
                r#"<span class="pill good">public</span>"#
            } else {
                r#"<span class="pill">private</span>"#
            },
            platforms = platforms.join(", "),
        );
    }
    if rows.is_empty() {
        return r#"<section class="card" id="capgo-channels"><header><h2>Capgo channels</h2></header><div class="empty">No Capgo channels.</div></section>"#.to_owned();
    }
    format!(
        r#"<section class="card" id="capgo-channels"><header><div><h2>Capgo channels</h2><p>What each channel serves to capacitor-updater devices.</p></div></header><div class="table-wrap">{}</div></section>"#,
        stacked(&format!(
            r#"<table><thead><tr><th>Channel</th><th>Serves</th><th>Access</th><th class="hide-narrow">Platforms</th><th>Actions</th></tr></thead><tbody>{rows}</tbody></table>"#
        ))
    )
}

/// Each Expo channel's newest release per (platform, runtime version).
fn expo_channels(catalog: &AppCatalog) -> BTreeMap<String, Vec<&ExpoRelease>> {
    let mut newest: BTreeMap<(String, String, String), &ExpoRelease> = BTreeMap::new();
    for release in catalog.expo_releases() {
        let key = (release.channel.clone(), release.runtime_version.clone(), release.platform.as_str().to_owned());
        if newest.get(&key).is_none_or(|seen| seen.created_at < release.created_at) {
            newest.insert(key, release);
        }
    }
    let mut channels: BTreeMap<String, Vec<&ExpoRelease>> = BTreeMap::new();
    for ((channel, ..), release) in newest {
        channels.entry(channel).or_default().push(release);
    }
    channels
}

fn expo_section(session: &Session, catalog: &AppCatalog) -> String {
    let app_id = catalog.app().id.as_str();
    let channels = expo_channels(catalog);
    if channels.is_empty() {
        return String::new();
    }
    let act = can_act(session);
    let names: Vec<&String> = channels.keys().collect();
    let mut rows = String::new();
    for (channel, releases) in &channels {
        for release in releases {
            let what = match &release.kind {
                ExpoReleaseKind::Update { .. } => "update",
                ExpoReleaseKind::RollBackToEmbedded => "roll back to embedded",
            };
            let mut actions = String::new();
            if act {
                actions.push_str(&action_form(session, Action {
                    app_id,
                    action: "expo-rollback",
                    label: "Roll back",
                    style: "warn",
                    confirm: format!("Roll channel {channel} back to the given release (or the embedded update)?"),
                    fields: vec![("channel", channel.clone()), ("runtime_version", release.runtime_version.clone())],
                    inputs: r#"<input type="text" name="to" placeholder="release id, or empty for embedded" aria-label="release">"#.to_owned(),
                }));
                let targets: String = names
                    .iter()
                    .filter(|other| **other != channel)
                    .map(|other| format!(r#"<option value="{0}">{0}</option>"#, escape(other)))
                    .chain(std::iter::once(r#"<option value="">new channel…</option>"#.to_owned()))
                    .collect();
                actions.push_str(&action_form(session, Action {
                    app_id,
                    action: "expo-promote",
                    label: "Promote",
                    style: "light",
                    confirm: format!("Serve release {} on the chosen channel too?", release.id),
                    fields: vec![("release", release.id.clone())],
                    inputs: format!(r#"<select name="to_channel" aria-label="to channel">{targets}</select><input class="narrow" type="text" name="new_channel" placeholder="name" aria-label="new channel">"#),
                }));
            }
            let _ = write!(
                rows,
                r#"<tr data-expo-channel="{c}"><td><b>{c}</b></td><td>{platform}</td><td class="mono">{runtime}</td><td class="mono" title="{id}">{short}</td><td class="hide-narrow">{what}{message}</td><td class="hide-narrow">{at}</td><td><div class="actions">{actions}</div></td></tr>"#,
                c = escape(channel),
                platform = release.platform.as_str(),
                runtime = escape(&release.runtime_version),
                id = escape(&release.id),
                short = escape(release.id.get(..8).unwrap_or(&release.id)),
                message = if release.message.is_empty() {
                    String::new()
                } else {
                    format!(" · {}", escape(&release.message))
                },
                at = when(release.created_at),
            );
        }
    }
    format!(
        r#"<section class="card" id="expo-channels"><header><div><h2>Expo channels</h2><p>What each channel serves to expo-updates clients, per platform and runtime version.</p></div></header><div class="table-wrap">{}</div></section>"#,
        stacked(&format!(
            r#"<table><thead><tr><th>Channel</th><th>Platform</th><th>Runtime</th><th>Release</th><th class="hide-narrow">What</th><th class="hide-narrow">Published</th><th>Actions</th></tr></thead><tbody>{rows}</tbody></table>"#
        ))
    )
}

fn releases(overview: &AppOverview) -> String {
    let catalog = &overview.catalog;
    let mut rows = String::new();
    let mut bundles: Vec<_> = catalog.bundles().collect();
    bundles.sort_by_key(|b| std::cmp::Reverse(b.id));
    for bundle in bundles {
        let version = bundle.version.as_str();
        let counts = overview.summary.per_bundle.iter().find(|c| c.version_name == version);
        let (devices, installs, failures) = counts.map_or((0, 0, 0), |c| (c.devices, c.installs, c.failures));
        let rate = counts.map_or(0.0, charts::rate);
        let _ = write!(
            rows,
            r#"<tr data-release="{v}"><td class="mono"><b>{v}</b></td><td class="num" data-devices>{devices}</td><td class="num" data-installs>{installs}</td><td class="num" data-failures>{failures}</td><td class="num"><span class="pill {pill}" data-rate>{rate}</span></td><td class="hide-narrow">{at}</td></tr>"#,
            v = escape(version),
            pill = if rate > 0.05 {
                "bad"
            } else if failures > 0 {
                "warn"
            } else {
                "good"
            },
            rate = percent(rate),
            at = when(bundle.created_at),
        );
    }
    if rows.is_empty() {
        rows = r#"<tr><td colspan="6" class="empty">No bundles published yet.</td></tr>"#.to_owned();
    }
    format!(
        r#"<section class="grid two"><div class="card"><header><div><h2>Adoption</h2><p>Installs per release, accumulated over 14 days</p></div></header><div class="body">{}</div></div><div class="card"><header><div><h2>Failure rate</h2><p>Failed install attempts per release</p></div></header><div class="body">{}</div></div></section><section class="card" id="releases"><header><div><h2>Releases</h2><p>Capgo bundles with what devices report.</p></div></header><div class="table-wrap">{}</div></section>"#,
        charts::adoption(&overview.summary.recent),
        charts::failure_rates(&overview.summary.per_bundle),
        stacked(&format!(
            r#"<table><thead><tr><th>Version</th><th class="num">Devices</th><th class="num">Installs</th><th class="num">Failures</th><th class="num">Failure rate</th><th class="hide-narrow">Published</th></tr></thead><tbody>{rows}</tbody></table>"#
        )),
    )
}

fn events(overview: &AppOverview) -> String {
    let mut rows = String::new();
    for event in overview.summary.recent.iter().take(10) {
        let kind = if event.action.ends_with("_fail") {
            "bad"
        } else if event.action == "set" {
            "good"
        } else {
            ""
        };
        let _ = write!(
            rows,
            r#"<tr><td class="hide-narrow">{}</td><td class="mono">{}</td><td><span class="pill {kind}">{}</span></td><td class="mono">{}</td><td class="hide-narrow">{}</td></tr>"#,
            when(event.occurred_at),
            escape(event.device_id.as_str()),
            escape(&event.action),
            escape(&event.version_name),
            escape(&event.platform),
        );
    }
    if rows.is_empty() {
        rows = r#"<tr><td colspan="5" class="empty">No events reported yet.</td></tr>"#.to_owned();
    }
    format!(
        r#"<section class="card" id="events"><header><h2>Recent events</h2></header><div class="table-wrap">{}</div></section>"#,
        stacked(&format!(
            r#"<table><thead><tr><th class="hide-narrow">When</th><th>Device</th><th>Event</th><th>Version</th><th class="hide-narrow">Platform</th></tr></thead><tbody>{rows}</tbody></table>"#
        ))
    )
}

/// Audit records as a table.
pub(super) fn audit_table(records: &[AuditRecord]) -> String {
    let mut rows = String::new();
    for record in records {
        let _ = write!(
            rows,
            r#"<tr data-audit="{action}"><td>{at}</td><td><b>{key}</b></td><td><span class="pill">{action}</span></td><td>{channel}</td><td class="json" title="{full}">{change}</td></tr>"#,
            at = when(record.at),
            key = escape(&record.key_name),
            action = escape(&record.action),
            channel = escape(record.channel.as_deref().unwrap_or("—")),
            full = escape(&format!(
                "before: {}\nafter: {}",
                record.before.as_deref().unwrap_or("—"),
                record.after.as_deref().unwrap_or("—")
            )),
            change = change_summary(record.before.as_deref(), record.after.as_deref()),
        );
    }
    if rows.is_empty() {
        return r#"<div class="empty">No changes recorded yet.</div>"#.to_owned();
    }
    format!(
        r#"<div class="table-wrap">{}</div>"#,
        stacked(&format!(
            r#"<table><thead><tr><th>When</th><th>Key</th><th>Action</th><th>Channel</th><th>Change</th></tr></thead><tbody>{rows}</tbody></table>"#
        ))
    )
}

/// What a change did, in a few words: the fields that changed (`field: before → after`), or what was created or
/// removed. The whole before and after are the row's title.
fn change_summary(before: Option<&str>, after: Option<&str>) -> String {
    use serde_json::Value;
    let parse = |text: Option<&str>| text.and_then(|t| serde_json::from_str::<Value>(t).ok());
    let short = |value: &Value| {
        let text = match value {
            Value::String(text) => text.clone(),
            Value::Null => "none".to_owned(),
            other => other.to_string(),
        };
        let mut text: String = text.chars().take(40).collect();
        if text.len() < value.to_string().len().saturating_sub(2) && text.chars().count() == 40 {
            text.push('…');
        }
        escape(&text)
    };
    const SHOWN: [&str; 10] =
        ["state", "percent", "candidate", "bundle", "channel", "version", "reason", "public", "role", "name"];
    match (parse(before), parse(after)) {
        (Some(Value::Object(before)), Some(Value::Object(after))) => {
            let changed: Vec<String> = after
                .iter()
                .filter(|(key, value)| before.get(*key) != Some(value) && !key.ends_with("_at") && *key != "changed_by")
                .take(4)
                .map(|(key, value)| {
                    let old = before.get(key).map_or("none".to_owned(), short);
                    format!("<b>{}</b> {old} → {}", escape(key), short(value))
                })
                .collect();
            if changed.is_empty() { "no change".to_owned() } else { changed.join("<br>") }
        }
        (None, Some(Value::Object(after))) => {
            let fields: Vec<String> = SHOWN
                .iter()
                .filter_map(|key| after.get(*key).map(|value| format!("<b>{key}</b> {}", short(value))))
                .take(3)
                .collect();
            format!("created {}", fields.join(", "))
        }
        (_, Some(Value::Array(items))) => format!("{} release(s)", items.len()),
        (Some(_), None) => "removed".to_owned(),
        _ => "—".to_owned(),
    }
}

/// The audit log page.
pub(super) fn audit(app_id: &str, records: &[AuditRecord]) -> String {
    format!(
        r#"{}<section class="card"><header><div><h2>Audit log</h2><p>Every change to this app: who (the key's name), what, before and after. Newest first.</p></div></header>{}</section>"#,
        app_tabs(app_id, "audit"),
        audit_table(records)
    )
}

/// The device lookup page, with the result for `query` when there is one.
pub(super) fn device(
    session: &Session,
    app_id: &str,
    query: &str,
    found: Option<&DeviceLookup>,
    flash: &str,
) -> String {
    let mut out = app_tabs(app_id, "devices");
    out.push_str(flash);
    let _ = write!(
        out,
        r#"<section class="card"><div class="body"><form class="search" method="get" action="/console/apps/{app}/devices"><input type="search" name="id" value="{q}" placeholder="Capgo device id or Expo EAS-Client-ID" aria-label="device id"><button class="btn" type="submit">Look up</button></form></div></section>"#,
        app = escape(app_id),
        q = escape(query),
    );
    let Some(found) = found else { return out };
    let mut facts = String::new();
    match &found.report {
        Some(report) => {
            let _ = write!(
                facts,
                r#"<dt>Runs</dt><dd class="mono" data-runs>{}</dd><dt>Platform</dt><dd>{} · native {} · OS {}</dd><dt>Plugin</dt><dd class="mono">{}</dd><dt>Last seen</dt><dd>{}</dd><dt>Asks for channel</dt><dd>{}</dd>"#,
                escape(&report.version_name),
                report.platform.as_str(),
                escape(&report.version_build),
                escape(&report.version_os),
                escape(&report.plugin_version),
                when(report.seen_at),
                escape(if report.default_channel.is_empty() { "(none)" } else { &report.default_channel }),
            );
        }
        None => facts.push_str(r#"<dt>Reports</dt><dd>No Capgo check-in stored under this id (Expo clients report nothing; their rollouts are decided by this id below).</dd>"#),
    }
    let _ = write!(
        facts,
        r#"<dt>Override</dt><dd class="mono" data-override>{}</dd>"#,
        found.override_view.as_ref().map_or("none".to_owned(), |v| escape(&v.to_string()))
    );
    for offer in &found.offers {
        let serve = match offer.serve {
            Serve::Unaffected => "not decided by the rollout (pinned, or completed)",
            Serve::Candidate => "the candidate",
            Serve::Stable => "the stable release",
            Serve::StableAfterHalt => "the stable release (moved back after the halt)",
        };
        let _ = write!(
            facts,
            r#"<dt>Offered on {}</dt><dd data-offer>{} <span class="mono">{}</span></dd>"#,
            escape(&offer.channel),
            serve,
            escape(&offer.candidate)
        );
    }
    let mut events = String::new();
    for event in &found.events {
        let _ = write!(
            events,
            r#"<tr><td>{}</td><td><span class="pill">{}</span></td><td class="mono">{}</td></tr>"#,
            when(event.occurred_at),
            escape(&event.action),
            escape(&event.version_name)
        );
    }
    let events = if events.is_empty() {
        r#"<div class="empty">No recent events.</div>"#.to_owned()
    } else {
        format!(
            r#"<div class="table-wrap"><table><thead><tr><th>When</th><th>Event</th><th>Version</th></tr></thead><tbody>{events}</tbody></table></div>"#
        )
    };
    let pin = if can_act(session) && found.report.is_some() {
        action_form(session, Action {
            app_id,
            action: "device-pin",
            label: "Pin",
            style: "",
            confirm: format!("Pin device {query}? It gets what you pin on its next check."),
            fields: vec![("device_id", query.to_owned())],
            inputs: r#"<input type="text" name="channel" placeholder="private channel" aria-label="channel"><input class="narrow" type="text" name="version" placeholder="or version" aria-label="version">"#.to_owned(),
        })
    } else {
        String::new()
    };
    let _ = write!(
        out,
        r#"<section class="grid two"><div class="card" id="device"><header><h2 class="mono">{}</h2></header><div class="body"><dl class="kv">{facts}</dl></div><div class="body actions" style="border-top:1px solid var(--line)">{pin}</div></div><div class="card"><header><h2>Recent events</h2></header>{events}</div></section>"#,
        escape(query)
    );
    out
}
