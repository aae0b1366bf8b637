//! The console's HTML: escaping, the page frame (top bar, tabs) and the action form every button is. Pages are
//! built as strings on the server; every value from the store or the request goes through [`escape`].

use std::fmt::Write;

use updraft_core::Role;

use crate::console_sessions::Session;

/// Escapes text for HTML content and attribute values.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The mark of the brand: an arrow rising out of a cloud line.
const MARK: &str = r##"<span class="mark"><svg width="16" height="16" viewBox="0 0 16 16" aria-hidden="true"><path d="M8 2l4 4H9v5H7V6H4z" fill="#fff"/><path d="M2 13h12" stroke="#fff" stroke-width="1.6" stroke-linecap="round"/></svg></span>"##;

/// A whole page: head, top bar (with the signed-in key and sign-out), and `body`.
pub(super) fn page(title: &str, session: Option<&Session>, body: &str) -> String {
    let mut who = String::new();
    if let Some(session) = session {
        let grant = session.caller.grant();
        let scope = match (&grant.app, &grant.channel) {
            (None, _) => String::new(),
            (Some(app), None) => format!(" · {}", escape(app.as_str())),
            (Some(app), Some(channel)) => format!(" · {} / {}", escape(app.as_str()), escape(channel.as_str())),
        };
        let _ = write!(
            who,
            r#"<div class="who"><span class="name">{name}{scope}</span><span class="role" data-role="{role}">{role}</span><form method="post" action="/console/signout"><input type="hidden" name="csrf" value="{csrf}"><button class="btn ghost small" type="submit">Sign out</button></form></div>"#,
            name = escape(session.caller.key_name()),
            role = grant.role,
            csrf = escape(&session.csrf),
        );
    }
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{title} · Updraft</title><link rel="stylesheet" href="/console/assets/console.css"><script src="/console/assets/console.js" defer></script></head><body><div class="topbar"><a class="brand" href="/console/apps">{MARK}Updraft <small>console</small></a><div class="spacer"></div>{who}</div><main>{body}</main></body></html>"#,
        title = escape(title),
    )
}

/// The sign-in page (the key is posted, never put in a URL, and never shown back).
pub(super) fn sign_in_page(message: Option<&str>) -> String {
    let flash =
        message.map(|m| format!(r#"<div class="flash err" id="signin-error">{}</div>"#, escape(m))).unwrap_or_default();
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Sign in · Updraft</title><link rel="stylesheet" href="/console/assets/console.css"></head><body><div class="signin"><div class="panel"><div class="brand">{MARK}Updraft <small style="color:#6366f1">console</small></div>{flash}<form method="post" action="/console/signin" autocomplete="off"><label for="key">API key</label><input id="key" name="key" type="password" placeholder="upd_…" required autofocus><button class="btn" id="signin" type="submit">Sign in</button></form><p class="note">Sign in with an API key. A <b>read</b> key sees; a <b>publish</b> key also moves releases; an <b>admin</b> key does everything in its scope. The key is exchanged for a session and never stored in the browser.</p></div></div></body></html>"#
    )
}

/// The tabs of an app's pages.
pub(super) fn app_tabs(app_id: &str, current: &str) -> String {
    let app = escape(app_id);
    let tab = |path: &str, name: &str, label: &str| {
        let on = if name == current { " on" } else { "" };
        format!(r#"<a class="tab{on}" href="/console/apps/{app}{path}">{label}</a>"#)
    };
    format!(
        r#"<div class="crumbs"><a href="/console/apps">Apps</a> / {app}</div><h1>{app}</h1><nav class="tabs">{}{}{}</nav>"#,
        tab("", "overview", "Overview"),
        tab("/devices", "devices", "Device lookup"),
        tab("/audit", "audit", "Audit log"),
    )
}

/// Whether the session may act at all (a `read` key gets no action buttons).
pub(super) fn can_act(session: &Session) -> bool {
    session.caller.grant().role >= Role::Publish
}

/// One action: a form posting `fields` (and the CSRF token) to the app's action, asking `confirm` first.
pub(super) struct Action<'a> {
    pub(super) app_id: &'a str,
    pub(super) action: &'a str,
    pub(super) label: &'a str,
    pub(super) style: &'a str,
    pub(super) confirm: String,
    /// Hidden fields.
    pub(super) fields: Vec<(&'a str, String)>,
    /// Visible inputs, as HTML.
    pub(super) inputs: String,
}

pub(super) fn action_form(session: &Session, action: Action<'_>) -> String {
    let mut hidden = format!(r#"<input type="hidden" name="csrf" value="{}">"#, escape(&session.csrf));
    for (name, value) in &action.fields {
        let _ = write!(hidden, r#"<input type="hidden" name="{name}" value="{}">"#, escape(value));
    }
    format!(
        r#"<form method="post" action="/console/apps/{app}/actions/{act}" data-confirm="{confirm}" data-action="{act}">{hidden}{inputs}<button class="btn small {style}" type="submit">{label}</button></form>"#,
        app = escape(action.app_id),
        act = action.action,
        confirm = escape(&action.confirm),
        inputs = action.inputs,
        style = action.style,
        label = escape(action.label),
    )
}

/// Marks a table to stack on a narrow screen: each cell gets its column's header as `data-label`, which the
/// stylesheet shows in front of the value when the header row is hidden.
pub(super) fn stacked(table: &str) -> String {
    let headers: Vec<&str> = table
        .split("<th")
        .skip(1)
        // `<thead` starts with `<th` too.
        .filter(|cell| cell.starts_with(['>', ' ']))
        .map(|cell| {
            let text = cell.split_once('>').map_or("", |(_, rest)| rest);
            text.split_once("</th>").map_or("", |(text, _)| text)
        })
        .collect();
    let mut out = String::with_capacity(table.len() + 64 * headers.len());
    for (index, row) in table.split("<tr").enumerate() {
        if index > 0 {
            out.push_str("<tr");
        }
        let mut cells = row.split("<td");
        out.push_str(cells.next().unwrap_or_default());
        for (column, cell) in cells.enumerate() {
            let _ = write!(out, r#"<td data-label="{}""#, headers.get(column).copied().unwrap_or_default());
            out.push_str(cell);
        }
    }
    out.replacen("<table>", r#"<table class="stack">"#, 1)
}

/// A time as operators read it (UTC, to the minute).
pub(super) fn when(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A rate as a percentage with one decimal.
pub(super) fn percent(rate: f64) -> String {
    format!("{:.1} %", rate * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacked_tables_label_their_cells() {
        let table = "<table><thead><tr><th>A</th><th class=\"num\">B</th></tr></thead><tbody><tr><td>1</td><td class=\"num\">2</td></tr></tbody></table>";
        let out = stacked(table);
        assert!(out.starts_with(r#"<table class="stack">"#), "{out}");
        assert!(out.contains(r#"<td data-label="A">1</td><td data-label="B" class="num">2</td>"#), "{out}");
    }

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(escape(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }
}
