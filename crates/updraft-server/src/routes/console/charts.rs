//! The console's charts, drawn as inline SVG on the server: adoption of each release over time (installs per day,
//! accumulated, one labelled line per version) and the failure rate of each release (labelled bars). Labels sit on
//! the lines and bars themselves, so a chart reads without a legend.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use chrono::{Duration, NaiveDate, Utc};
use updraft_core::{BundleCounts, StatsEvent};

use super::html::escape;

/// Days the adoption chart spans.
const DAYS: i64 = 14;
/// Lines drawn at most (the versions with the most installs).
const MAX_LINES: usize = 5;
const COLORS: [&str; MAX_LINES] = ["#4f46e5", "#0891b2", "#d97706", "#db2777", "#059669"];

/// Installs per version over the last [`DAYS`] days, accumulated: one line per version, labelled at its end.
pub(super) fn adoption(events: &[StatsEvent]) -> String {
    let today = Utc::now().date_naive();
    let first = today - Duration::days(DAYS - 1);
    let mut per_version: BTreeMap<&str, BTreeMap<NaiveDate, u64>> = BTreeMap::new();
    for event in events.iter().filter(|e| e.action == "set") {
        let day = event.occurred_at.date_naive();
        if day >= first && day <= today {
            *per_version.entry(event.version_name.as_str()).or_default().entry(day).or_default() += 1;
        }
    }
    if per_version.is_empty() {
        return r#"<div class="empty">No installs reported in the last 14 days.</div>"#.to_owned();
    }
    let mut versions: Vec<(&str, u64)> =
        per_version.iter().map(|(version, days)| (*version, days.values().sum())).collect();
    versions.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    versions.truncate(MAX_LINES);
    let max = versions.iter().map(|(_, total)| *total).max().unwrap_or(1).max(1);
    let (width, height, left, right, top, bottom) = (560.0, 240.0, 40.0, 96.0, 16.0, 30.0);
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let x = |day: i64| left + plot_w * day as f64 / (DAYS - 1) as f64;
    let y = |value: u64| top + plot_h * (1.0 - value as f64 / max as f64);
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="Installs per release over the last {DAYS} days, accumulated" data-chart="adoption">"#
    );
    for step in 0..=4u64 {
        let value = max * step / 4;
        let _ = write!(
            svg,
            r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e2e8f0"/><text x="{}" y="{:.1}" text-anchor="end">{value}</text>"##,
            left + plot_w,
            left - 6.0,
            y(value) + 4.0,
            y = y(value),
        );
    }
    for day in [0, DAYS / 2, DAYS - 1] {
        let date = first + Duration::days(day);
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            x(day),
            height - 8.0,
            date.format("%b %-d")
        );
    }
    let mut taken: BTreeSet<i64> = BTreeSet::new();
    for (index, (version, _)) in versions.iter().enumerate() {
        let days = &per_version[version];
        let mut total = 0;
        let mut points = Vec::new();
        for day in 0..DAYS {
            total += days.get(&(first + Duration::days(day))).copied().unwrap_or(0);
            points.push(format!("{:.1},{:.1}", x(day), y(total)));
        }
        let color = COLORS[index % COLORS.len()];
        // The end label, nudged down when another label already sits there.
        let mut label_y = y(total).round() as i64 + 4;
        while taken.iter().any(|other| (other - label_y).abs() < 14) {
            label_y += 14;
        }
        taken.insert(label_y);
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2.5" stroke-linejoin="round" points="{}"/><circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{color}"/><text class="label" x="{:.1}" y="{label_y}" data-version="{v}">{v} · {total}</text>"#,
            points.join(" "),
            x(DAYS - 1),
            y(total),
            x(DAYS - 1) + 8.0,
            v = escape(version),
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The failure rate of each release (failed install attempts), one labelled bar per version, red past 5 %.
pub(super) fn failure_rates(per_bundle: &[BundleCounts]) -> String {
    let rows: Vec<&BundleCounts> = per_bundle.iter().filter(|b| b.installs > 0 || b.failures > 0).collect();
    if rows.is_empty() {
        return r#"<div class="empty">No installs or failures reported yet.</div>"#.to_owned();
    }
    let (width, row_h, left, right) = (560.0, 30.0, 70.0, 190.0);
    let height = row_h * rows.len() as f64 + 10.0;
    let plot_w = width - left - right;
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="Failure rate per release" data-chart="failure-rate">"#
    );
    for (index, bundle) in rows.iter().enumerate() {
        let rate = rate(bundle);
        let top = 5.0 + row_h * index as f64;
        let bar = (plot_w * rate).max(2.0);
        let color = if rate > 0.05 { "#dc2626" } else { "#059669" };
        let _ = write!(
            svg,
            r##"<text class="label" x="{}" y="{:.1}" text-anchor="end">{v}</text><rect x="{left}" y="{:.1}" width="{plot_w}" height="14" rx="7" fill="#eef2f7"/><rect x="{left}" y="{:.1}" width="{bar:.1}" height="14" rx="7" fill="{color}"/><text x="{:.1}" y="{:.1}" data-version="{v}">{:.1} % · {} failed, {} installed</text>"##,
            left - 10.0,
            top + 12.0,
            top + 1.0,
            top + 1.0,
            left + plot_w + 10.0,
            top + 12.0,
            rate * 100.0,
            bundle.failures,
            bundle.installs,
            v = escape(&bundle.version_name),
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The share of install attempts that failed: failures / (installs + failures), 0 without either.
pub(super) fn rate(bundle: &BundleCounts) -> f64 {
    let attempts = bundle.installs + bundle.failures;
    if attempts == 0 { 0.0 } else { bundle.failures as f64 / attempts as f64 }
}
