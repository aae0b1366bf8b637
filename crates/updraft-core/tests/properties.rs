//! Property tests over the core's parsers of outside input: version coercion (`version_build`), plugin versions,
//! ids, asset extensions and zip entry names. None may panic; coercion is a total order over what it accepts; no
//! `..` ever passes the entry-name rules.

use proptest::prelude::*;
use updraft_core::{
    AppId, BundleVersion, ChannelName, DeviceId, PluginVersion, check_asset_extension, check_bundle_entries,
    coerce_version_build,
};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn parsers_never_panic(raw in ".{0,80}") {
        let _ = coerce_version_build(&raw);
        let _ = PluginVersion::parse(&raw);
        let _ = AppId::parse(&raw);
        let _ = DeviceId::parse(&raw);
        let _ = ChannelName::parse(&raw);
        let _ = BundleVersion::parse(&raw);
        let _ = check_asset_extension(&raw);
        let _ = updraft_core::sha256_hex(&raw);
        let _ = check_bundle_entries([raw.as_str(), "index.html"]);
    }

    #[test]
    fn coerced_versions_keep_their_numbers(major in 0u64..100_000, minor in 0u64..100_000, patch in 0u64..100_000) {
        let version = coerce_version_build(&format!("{major}.{minor}.{patch}")).unwrap();
        prop_assert_eq!((version.major, version.minor, version.patch), (major, minor, patch));
        let short = coerce_version_build(&format!("{major}.{minor}")).unwrap();
        prop_assert_eq!((short.major, short.minor, short.patch), (major, minor, 0));
    }

    #[test]
    fn coerced_versions_are_totally_ordered(a in "[0-9.a-z-]{1,12}", b in "[0-9.a-z-]{1,12}", c in "[0-9.a-z-]{1,12}") {
        let (Some(a), Some(b), Some(c)) = (coerce_version_build(&a), coerce_version_build(&b), coerce_version_build(&c)) else {
            return Ok(());
        };
        prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
        if a <= b && b <= c {
            prop_assert!(a <= c);
        }
    }

    #[test]
    fn no_entry_name_with_dot_dot_passes(prefix in "([a-z]{1,4}/){0,3}", suffix in "(/[a-z]{1,4}){0,3}/?") {
        let name = format!("{prefix}..{suffix}");
        prop_assert!(check_bundle_entries(["index.html", name.as_str()]).is_err(), "{:?}", name);
        let windows = format!("{prefix}..\\x{suffix}");
        prop_assert!(check_bundle_entries(["index.html", windows.as_str()]).is_err(), "{:?}", windows);
    }

    #[test]
    fn accepted_extensions_have_no_path_in_them(ext in ".{0,20}") {
        if check_asset_extension(&ext).is_ok() {
            prop_assert!(!ext.contains(['/', '\\', '\0']) && ext != ".." && !ext.chars().any(char::is_control), "{:?}", ext);
        }
    }
}
