//! Table-driven tests of the Capgo selection rules: one `check` helper, one line per case.

use chrono::Utc;

use super::*;
use crate::app::App;
use crate::bundle::{BundleEncryption, BundleSource};
use crate::channel::ChannelSettings;
use crate::device::{BundlePin, OverrideTarget};
use crate::ids::{AppId, BundleVersion, ChannelName};

const DEVICE: &str = "0f6b3e1c-6c1e-4a55-9f3a-2f0c9a3b7d21";

fn bundle(id: i64, version: &str) -> Bundle {
    Bundle {
        id,
        app_id: AppId::parse("com.example.app").unwrap(),
        version: BundleVersion::parse(version).unwrap(),
        checksum: "0".repeat(64),
        crc32: Some("00000000".into()),
        encryption: None,
        min_update_version: None,
        source: BundleSource::Stored { object_key: format!("b/{id}"), size_bytes: 1, sha256: "0".repeat(64) },
        manifest: vec![],
        metadata: Default::default(),
        created_at: Utc::now(),
    }
}

fn channel(id: i64, name: &str, bundle_id: Option<i64>, edit: impl FnOnce(&mut ChannelSettings)) -> Channel {
    let mut settings = ChannelSettings { public: true, ..ChannelSettings::default() };
    edit(&mut settings);
    Channel {
        id,
        app_id: AppId::parse("com.example.app").unwrap(),
        name: ChannelName::parse(name).unwrap(),
        bundle_id,
        settings,
        created_at: Utc::now(),
        updated_at: Utc::now(),
    }
}

fn catalog(channels: Vec<Channel>, bundles: Vec<Bundle>, overrides: Vec<OverrideTarget>) -> AppCatalog {
    let app = App {
        id: AppId::parse("com.example.app").unwrap(),
        name: "Example".into(),
        public_key: None,
        default_channel: "production".into(),
        created_at: Utc::now(),
    };
    let overrides = overrides.into_iter().map(|o| (DeviceId::parse(DEVICE).unwrap(), o)).collect();
    AppCatalog::new(app, channels, bundles, overrides)
}

/// The usual app: `production` (public) on 1.0.1, plus 1.0.0, 1.1.0 and 2.0.0 uploaded.
fn standard(edit: impl FnOnce(&mut ChannelSettings)) -> AppCatalog {
    catalog(
        vec![channel(1, "production", Some(11), edit)],
        vec![bundle(10, "1.0.0"), bundle(11, "1.0.1"), bundle(12, "1.1.0"), bundle(13, "2.0.0")],
        vec![],
    )
}

fn device() -> UpdateCheck {
    UpdateCheck {
        device_id: DeviceId::parse(DEVICE).unwrap(),
        platform: Platform::Android,
        version_build: semver::Version::new(1, 0, 0),
        version_build_raw: "1.0.0".into(),
        version_name: "1.0.0".into(),
        plugin_version: PluginVersion::parse("8.51.14").unwrap(),
        is_emulator: false,
        is_prod: true,
        default_channel: None,
        key_id: None,
    }
}

fn with(edit: impl FnOnce(&mut UpdateCheck)) -> UpdateCheck {
    let mut check = device();
    edit(&mut check);
    check
}

/// Expected outcome, compact: `Ok("1.0.1")` is an update to 1.0.1, `Ok("builtin")` a revert, `Err(..)` a refusal.
fn check(catalog: &AppCatalog, request: UpdateCheck, expected: Result<&str, Refusal>) {
    let actual = match select_update(Some(catalog), &request) {
        UpdateDecision::Update(bundle) => Ok(bundle.version.as_str()),
        UpdateDecision::RevertToBuiltin => Ok("builtin"),
        UpdateDecision::Refuse(refusal) => Err(refusal),
    };
    assert_eq!(actual, expected, "request: {request:?}");
}

fn vo(version: &str, old: &str) -> (String, String) {
    (version.to_owned(), old.to_owned())
}

#[test]
fn offers_public_channel_bundle() {
    check(&standard(|_| {}), device(), Ok("1.0.1"));
}

#[test]
fn unknown_app_is_refused() {
    assert_eq!(select_update(None, &device()), UpdateDecision::Refuse(Refusal::AppNotFound));
}

#[test]
fn plugin_major_4_is_unsupported() {
    let old = with(|c| c.plugin_version = PluginVersion::parse("4.13.0").unwrap());
    check(&standard(|_| {}), old, Err(Refusal::UnsupportedPluginVersion));
}

#[test]
fn same_version_is_up_to_date() {
    check(&standard(|_| {}), with(|c| c.version_name = "1.0.1".into()), Err(Refusal::NoNewVersion));
}

#[test]
fn same_version_runs_before_policy_checks() {
    // Reached through an override, a channel that does not serve Android still answers "up to date" first.
    let catalog = catalog(
        vec![channel(1, "qa", Some(11), |s| s.android = false)],
        vec![bundle(11, "1.0.1")],
        vec![OverrideTarget { channel_id: Some(1), bundle: None }],
    );
    check(&catalog, with(|c| c.version_name = "1.0.1".into()), Err(Refusal::NoNewVersion));
}

#[test]
fn builtin_version_name_maps_to_version_build() {
    // An old plugin on its embedded bundle says "builtin"; the channel's bundle equals the native version.
    let catalog = catalog(vec![channel(1, "production", Some(10), |_| {})], vec![bundle(10, "1.0.0")], vec![]);
    check(&catalog, with(|c| c.version_name = "builtin".into()), Err(Refusal::NoNewVersion));
}

#[test]
fn unknown_current_version_gets_the_update() {
    check(&standard(|_| {}), with(|c| c.version_name = "unknown".into()), Ok("1.0.1"));
}

#[test]
fn no_public_channel_for_platform_means_no_channel() {
    check(&standard(|s| s.public = false), device(), Err(Refusal::NoChannel));
    // Public, but for iOS only: an Android device finds no channel (resolution filters by platform).
    check(&standard(|s| s.android = false), device(), Err(Refusal::NoChannel));
    let ios = with(|c| c.platform = Platform::Ios);
    check(&standard(|s| s.ios = false), ios, Err(Refusal::NoChannel));
    let electron = with(|c| c.platform = Platform::Electron);
    check(&standard(|s| s.electron = false), electron, Err(Refusal::NoChannel));
}

#[test]
fn public_channel_is_first_by_name_serving_the_platform() {
    let catalog = catalog(
        vec![
            channel(1, "zeta", Some(10), |_| {}),
            channel(2, "alpha-ios", Some(11), |s| s.android = false),
            channel(3, "beta", Some(12), |_| {}),
        ],
        vec![bundle(10, "1.0.3"), bundle(11, "1.0.1"), bundle(12, "1.0.2")],
        vec![],
    );
    check(&catalog, device(), Ok("1.0.2"));
    check(&catalog, with(|c| c.platform = Platform::Ios), Ok("1.0.1"));
}

#[test]
fn default_channel_selects_by_exact_name() {
    let catalog = catalog(
        vec![
            channel(1, "production", Some(10), |_| {}),
            channel(2, "beta", Some(11), |s| {
                s.public = false;
                s.allow_device_self_set = true;
            }),
            channel(3, "internal", Some(12), |s| s.public = false),
        ],
        vec![bundle(10, "1.0.1"), bundle(11, "1.0.2"), bundle(12, "1.0.3")],
        vec![],
    );
    check(&catalog, with(|c| c.default_channel = Some("beta".into())), Ok("1.0.2"));
    // A public channel can be requested by name.
    check(&catalog, with(|c| c.default_channel = Some("production".into())), Ok("1.0.1"));
    // Exact, case-sensitive names: anything else is not the channel asked for, and the device gets the public
    // channel as if it had asked for none (never the private channel's bundle).
    check(&catalog, with(|c| c.default_channel = Some("Beta".into())), Ok("1.0.1"));
    check(&catalog, with(|c| c.default_channel = Some("missing".into())), Ok("1.0.1"));
    check(&catalog, with(|c| c.default_channel = Some("internal".into())), Ok("1.0.1"));
}

#[test]
fn a_default_channel_switch_strands_no_device() {
    // The operator moved the public default from production to stable; devices that once learned "production"
    // (from their config, a setChannel() or a getChannel() reply) still send it.
    let switched = |production_exists: bool| {
        let mut channels = vec![channel(2, "stable", Some(11), |_| {})];
        if production_exists {
            channels.push(channel(1, "production", Some(10), |s| s.public = false));
        }
        catalog(channels, vec![bundle(10, "1.0.1"), bundle(11, "1.0.2")], vec![])
    };
    let stale = || with(|c| c.default_channel = Some("production".into()));
    check(&switched(true), stale(), Ok("1.0.2"));
    check(&switched(false), stale(), Ok("1.0.2"));
    check(&switched(true), device(), Ok("1.0.2"));
    // With no public channel for the platform there is nothing to fall back to.
    let none_public =
        catalog(vec![channel(1, "production", Some(10), |s| s.public = false)], vec![bundle(10, "1.0.1")], vec![]);
    check(&none_public, stale(), Err(Refusal::NoChannel));
}

#[test]
fn default_channel_must_serve_the_platform() {
    let catalog = catalog(vec![channel(1, "beta", Some(10), |s| s.android = false)], vec![bundle(10, "1.0.1")], vec![]);
    check(&catalog, with(|c| c.default_channel = Some("beta".into())), Err(Refusal::NoChannel));
}

#[test]
fn device_override_wins_and_may_point_at_private_channels() {
    let catalog = catalog(
        vec![channel(1, "production", Some(10), |_| {}), channel(2, "qa", Some(11), |s| s.public = false)],
        vec![bundle(10, "1.0.1"), bundle(11, "1.0.5")],
        vec![OverrideTarget { channel_id: Some(2), bundle: None }],
    );
    check(&catalog, device(), Ok("1.0.5"));
    check(&catalog, with(|c| c.default_channel = Some("production".into())), Ok("1.0.5"));
}

#[test]
fn override_onto_channel_without_platform_is_disabled_platform() {
    let catalog = catalog(
        vec![channel(1, "qa", Some(10), |s| {
            s.public = false;
            s.android = false;
        })],
        vec![bundle(10, "1.0.1")],
        vec![OverrideTarget { channel_id: Some(1), bundle: None }],
    );
    let expected =
        Refusal::DisabledPlatform { platform: Platform::Android, version: "1.0.1".into(), old: "1.0.0".into() };
    check(&catalog, device(), Err(expected));
}

#[test]
fn device_bundle_pin_replaces_the_channel_bundle() {
    let catalog = catalog(
        vec![channel(1, "production", Some(10), |_| {})],
        vec![bundle(10, "1.0.1"), bundle(11, "1.0.7")],
        vec![OverrideTarget { channel_id: None, bundle: Some(BundlePin::Bundle(11)) }],
    );
    check(&catalog, device(), Ok("1.0.7"));
    // A pin also works when no channel resolves.
    let catalog = catalog_without_channels_pinned();
    check(&catalog, device(), Ok("1.0.7"));
}

fn catalog_without_channels_pinned() -> AppCatalog {
    catalog(
        vec![],
        vec![bundle(11, "1.0.7")],
        vec![OverrideTarget { channel_id: None, bundle: Some(BundlePin::Bundle(11)) }],
    )
}

#[test]
fn channel_pointing_at_missing_bundle_is_no_bundle() {
    let catalog = catalog(vec![channel(1, "production", Some(99), |_| {})], vec![], vec![]);
    check(&catalog, device(), Err(Refusal::NoBundle));
}

#[test]
fn major_guard_compares_with_version_build() {
    let catalog = catalog(vec![channel(1, "production", Some(13), |_| {})], vec![bundle(13, "2.0.0")], vec![]);
    let (version, old) = vo("2.0.0", "1.0.0");
    check(&catalog, device(), Err(Refusal::DisableToMajor { version, old }));
    // The current bundle name does not matter: native 2.x may take it.
    check(
        &catalog,
        with(|c| {
            c.version_build = semver::Version::new(2, 0, 0);
            c.version_build_raw = "2.0".into();
            c.version_name = "1.9.0".into();
        }),
        Ok("2.0.0"),
    );
    let open = catalog_with_mode(DisableAutoUpdate::None, "2.0.0");
    check(&open, device(), Ok("2.0.0"));
}

fn catalog_with_mode(mode: DisableAutoUpdate, version: &str) -> AppCatalog {
    catalog(
        vec![channel(1, "production", Some(10), |s| s.disable_auto_update = mode)],
        vec![bundle(10, version)],
        vec![],
    )
}

#[test]
fn minor_guard_needs_same_major_and_minor() {
    let (version, old) = vo("1.1.0", "1.0.0");
    check(
        &catalog_with_mode(DisableAutoUpdate::Minor, "1.1.0"),
        device(),
        Err(Refusal::DisableToMinor { version, old }),
    );
    check(&catalog_with_mode(DisableAutoUpdate::Minor, "1.0.9"), device(), Ok("1.0.9"));
}

#[test]
fn patch_guard_needs_same_major_minor_patch() {
    let (version, old) = vo("1.0.1", "1.0.0");
    check(
        &catalog_with_mode(DisableAutoUpdate::Patch, "1.0.1"),
        device(),
        Err(Refusal::DisableToPatch { version, old }),
    );
    check(
        &catalog_with_mode(DisableAutoUpdate::Patch, "1.0.0-hotfix.1"),
        with(|c| c.version_name = "x".into()),
        Err(Refusal::UnderNative { version: "1.0.0-hotfix.1".into(), old: "1.0.0".into() }),
    );
}

#[test]
fn version_number_guard_uses_min_update_version() {
    let mut with_min = bundle(10, "1.2.0");
    with_min.min_update_version = Some(semver::Version::new(1, 1, 0));
    let min_catalog = |b: Bundle| {
        catalog(
            vec![channel(1, "production", Some(10), |s| s.disable_auto_update = DisableAutoUpdate::VersionNumber)],
            vec![b],
            vec![],
        )
    };
    let (version, old) = vo("1.2.0", "1.0.0");
    check(&min_catalog(with_min.clone()), device(), Err(Refusal::DisableToMetadata { version, old }));
    let native_1_1 = with(|c| {
        c.version_build = semver::Version::new(1, 1, 0);
        c.version_build_raw = "1.1.0".into();
    });
    check(&min_catalog(with_min), native_1_1, Ok("1.2.0"));
    check(&min_catalog(bundle(10, "1.2.0")), device(), Err(Refusal::MisconfiguredChannel));
}

#[test]
fn under_native_guard() {
    let native_1_5 = || {
        with(|c| {
            c.version_build = semver::Version::new(1, 5, 0);
            c.version_build_raw = "1.5".into();
            c.version_name = "1.5".into();
        })
    };
    let (version, old) = vo("1.0.1", "1.5");
    check(&standard(|_| {}), native_1_5(), Err(Refusal::UnderNative { version, old }));
    check(&standard(|s| s.disable_auto_update_under_native = false), native_1_5(), Ok("1.0.1"));
}

#[test]
fn private_channel_requested_without_self_set_is_refused_by_resolution() {
    // Capgo's check 11 is reachable only through a stale route; resolution never picks such a channel.
    let catalog = standard(|s| s.public = false);
    check(&catalog, with(|c| c.default_channel = Some("production".into())), Err(Refusal::NoChannel));
}

#[test]
fn prod_dev_device_emulator_gates() {
    check(&standard(|s| s.allow_prod = false), device(), Err(Refusal::DisableProdBuild));
    check(&standard(|s| s.allow_dev = false), with(|c| c.is_prod = false), Err(Refusal::DisableDevBuild));
    check(&standard(|s| s.allow_device = false), device(), Err(Refusal::DisableDevice));
    check(&standard(|s| s.allow_emulator = false), with(|c| c.is_emulator = true), Err(Refusal::DisableEmulator));
    // TestFlight sends is_prod=false: a dev-only channel still serves it.
    check(&standard(|s| s.allow_prod = false), with(|c| c.is_prod = false), Ok("1.0.1"));
    check(&standard(|s| s.allow_device = false), with(|c| c.is_emulator = true), Ok("1.0.1"));
}

#[test]
fn policy_checks_run_in_capgo_order() {
    // Major guard comes before the prod gate.
    let catalog =
        catalog(vec![channel(1, "production", Some(13), |s| s.allow_prod = false)], vec![bundle(13, "2.0.0")], vec![]);
    let (version, old) = vo("2.0.0", "1.0.0");
    check(&catalog, device(), Err(Refusal::DisableToMajor { version, old }));
    // Under-native comes before the emulator gate.
    let catalog = catalog_with_mode(DisableAutoUpdate::Major, "0.9.0");
    let (version, old) = vo("0.9.0", "1.0.0");
    check(&catalog, with(|c| c.is_emulator = true), Err(Refusal::UnderNative { version, old }));
}

fn builtin_catalog() -> AppCatalog {
    catalog(vec![channel(1, "production", None, |_| {})], vec![], vec![])
}

#[test]
fn builtin_channel_reverts_devices_on_downloaded_bundles() {
    check(&builtin_catalog(), with(|c| c.version_name = "1.0.3".into()), Ok("builtin"));
}

#[test]
fn builtin_channel_leaves_devices_already_on_builtin() {
    check(&builtin_catalog(), with(|c| c.version_name = "builtin".into()), Err(Refusal::AlreadyOnBuiltin));
    // 8.44+ reports the native version as the builtin bundle's name.
    check(&builtin_catalog(), device(), Err(Refusal::AlreadyOnBuiltin));
    check(
        &builtin_catalog(),
        with(|c| {
            c.version_build_raw = "1.0".into();
            c.version_name = "1.0".into();
        }),
        Err(Refusal::AlreadyOnBuiltin),
    );
}

#[test]
fn builtin_revert_needs_plugin_6_2() {
    let old = with(|c| {
        c.plugin_version = PluginVersion::parse("6.1.0").unwrap();
        c.version_name = "1.0.3".into();
    });
    check(&builtin_catalog(), old, Err(Refusal::RevertTooOld));
    let new_enough = with(|c| {
        c.plugin_version = PluginVersion::parse("6.2.0").unwrap();
        c.version_name = "1.0.3".into();
    });
    check(&builtin_catalog(), new_enough, Ok("builtin"));
}

fn encrypted(id: i64, version: &str, key_id: Option<&str>) -> Bundle {
    let mut b = bundle(id, version);
    b.encryption = Some(BundleEncryption { session_key: "aXY=:a2V5".into(), key_id: key_id.map(str::to_owned) });
    b
}

#[test]
fn key_id_must_match_an_encrypted_bundle() {
    let key = "MIIBCgKCAQEAx8Q3rT2b";
    let enc =
        catalog(vec![channel(1, "production", Some(10), |_| {})], vec![encrypted(10, "1.0.1", Some(key))], vec![]);
    check(&enc, with(|c| c.key_id = Some(key.into())), Ok("1.0.1"));
    // Plugins 8.2 to 8.40.7 send a 4-character key id.
    check(&enc, with(|c| c.key_id = Some("MIIB".into())), Ok("1.0.1"));
    let other = "MIIBCgKCAQEAzzzzzzzz";
    check(
        &enc,
        with(|c| c.key_id = Some(other.into())),
        Err(Refusal::KeyIdMismatch { device_key_id: other.into(), bundle_key_id: key.into() }),
    );
    // A device with a key never gets a plain bundle.
    check(
        &standard(|_| {}),
        with(|c| c.key_id = Some(key.into())),
        Err(Refusal::KeyIdMismatch { device_key_id: key.into(), bundle_key_id: String::new() }),
    );
    // A device without a key id (older plugins never send it) is not checked.
    check(&enc, device(), Ok("1.0.1"));
}

#[test]
fn key_id_check_runs_before_same_version() {
    let key = "MIIBCgKCAQEAx8Q3rT2b";
    let request = with(|c| {
        c.key_id = Some(key.into());
        c.version_name = "1.0.1".into();
    });
    check(
        &standard(|_| {}),
        request,
        Err(Refusal::KeyIdMismatch { device_key_id: key.into(), bundle_key_id: String::new() }),
    );
}

#[test]
fn resolve_channel_reports_route() {
    let catalog = standard(|_| {});
    let resolve = |check: &UpdateCheck| {
        resolve_channel(&catalog, &check.device_id, check.platform, check.default_channel.as_deref())
    };
    assert!(matches!(resolve(&device()), Some(ChannelRoute::Public(c)) if c.name.as_str() == "production"));
    let requested = with(|c| c.default_channel = Some("production".into()));
    assert!(matches!(resolve(&requested), Some(ChannelRoute::Requested(_))));
    let unusable = with(|c| c.default_channel = Some("gone".into()));
    assert!(matches!(resolve(&unusable), Some(ChannelRoute::Fallback(c)) if c.name.as_str() == "production"));
}

#[test]
fn device_builtin_pin_reverts_that_device_only() {
    let catalog = catalog(
        vec![channel(1, "production", Some(10), |_| {})],
        vec![bundle(10, "1.0.1")],
        vec![OverrideTarget { channel_id: None, bundle: Some(BundlePin::Builtin) }],
    );
    check(&catalog, with(|c| c.version_name = "1.0.1".into()), Ok("builtin"));
    check(&catalog, device(), Err(Refusal::AlreadyOnBuiltin));
}

#[test]
fn versions_that_failed_on_the_device_are_not_offered_again() {
    let mut failed = standard(|_| {});
    failed.record_failure(&DeviceId::parse(DEVICE).unwrap(), "1.0.1");
    check(&failed, device(), Err(Refusal::FailedOnDevice { version: "1.0.1".into() }));
    // Other devices still get it.
    check(&failed, with(|c| c.device_id = DeviceId::parse("other").unwrap()), Ok("1.0.1"));
}

/// `standard()` with a rollout of 1.1.0 on production at `percent` (1.0.1 stable), in `state`.
fn with_rollout(percent: &str, state: &str, overrides: Vec<OverrideTarget>) -> AppCatalog {
    use crate::bucket::RolloutPercent;
    use crate::rollout::{Halt, HaltCause, HaltPolicy, Rollout, RolloutChange, RolloutId, RolloutSpec, StableTarget};
    let mut catalog = catalog(
        vec![channel(1, "production", Some(11), |_| {}), channel(2, "beta", Some(10), |s| s.public = false)],
        vec![bundle(10, "1.0.5"), bundle(11, "1.0.1"), bundle(12, "1.1.0")],
        overrides,
    );
    let spec = RolloutSpec {
        id: RolloutId::parse("r1").unwrap(),
        app_id: AppId::parse("com.example.app").unwrap(),
        channel: ChannelName::parse("production").unwrap(),
        candidate: RolloutTarget::CapgoBundle(BundleVersion::parse("1.1.0").unwrap()),
        stable: StableTarget::CapgoBundle(BundleVersion::parse("1.0.1").unwrap()),
        percent: RolloutPercent::parse(percent).unwrap(),
        policy: HaltPolicy::default(),
    };
    let mut rollout = Rollout::start(spec, Utc::now()).unwrap();
    match state {
        "halted" => {
            let halt = Halt { reason: "x".into(), at: Utc::now(), by: HaltCause::Automatic, figures: None };
            rollout = rollout.halt(halt).unwrap();
        }
        "completed" => rollout = rollout.complete(Utc::now()).unwrap(),
        _ => {}
    }
    let last_change = RolloutChange { action: "start".into(), by: "t".into(), at: Utc::now(), reason: String::new() };
    catalog.set_rollouts(vec![crate::rollout::StoredRollout { rollout, covers: vec![], last_change }]);
    catalog
}

#[test]
fn a_channel_rollout_offers_its_candidate_by_bucket_and_overrides_win() {
    // DEVICE's bucket in rollout r1 of production decides at 100 % and 0 %; at 50 % a device on the candidate keeps
    // it whatever its bucket.
    let on_candidate = || with(|c| c.version_name = "1.1.0".into());
    check(&with_rollout("100", "active", vec![]), device(), Ok("1.1.0"));
    check(&with_rollout("0", "active", vec![]), device(), Ok("1.0.1"));
    check(&with_rollout("0", "active", vec![]), on_candidate(), Err(Refusal::NoNewVersion));
    // Halted: nobody gets the candidate, and a device running it is moved back to the channel's bundle.
    check(&with_rollout("100", "halted", vec![]), device(), Ok("1.0.1"));
    check(&with_rollout("100", "halted", vec![]), on_candidate(), Ok("1.0.1"));
    // Completed: the channel's own bundle decides again (the store moved it to the candidate).
    check(&with_rollout("100", "completed", vec![]), device(), Ok("1.0.1"));
    // A bundle pin wins over the rollout; a channel override moves the device to a channel without one.
    let pin = OverrideTarget { channel_id: None, bundle: Some(BundlePin::Bundle(10)) };
    check(&with_rollout("100", "active", vec![pin]), device(), Ok("1.0.5"));
    let to_beta = OverrideTarget { channel_id: Some(2), bundle: None };
    check(&with_rollout("100", "active", vec![to_beta]), device(), Ok("1.0.5"));
}
