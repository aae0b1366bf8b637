#!/usr/bin/env bash
# bsdiff patches of a real `npx expo export` launch bundle (Hermes bytecode, the default), for Android and iOS, after
# a small source change and after a dependency change (date-fns added and imported from App.js), against the full
# file (identity and brotli 11). Each patch is computed with the worker's own calls
# (`crates/updraft-server/examples/patch_cost.rs`: qbsdiff on one thread, then applied to verify) under
# /usr/bin/time for CPU time and peak memory, then applied by the client's own bspatch (`vendor/bspatch/bspatch.c`
# from the `expo-updates` npm package, compiled here) and the result's SHA-256 checked against the new bundle.
# Not run by CI: it installs Expo and React Native from npm (about 470 packages) into a cache directory outside the
# repository, reused when present: UPDRAFT_EXPO_BENCH_CACHE, default /tmp/updraft-expo-export.
# PATCH_COST=path uses an already built patch_cost example instead of building it; UPDRAFT_EXPO_BENCH_KEEP=1 keeps the
# bundles and patches (the directory is printed). See docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

# One SDK's versions that go together (the expo package's bundledNativeModules.json for SDK 57).
expo_version=57.0.33
react_version=19.2.3
react_native_version=0.86.3
expo_updates_version=57.0.24
dependency=date-fns
dependency_version=4.1.0
# The larger app's libraries (pure JavaScript, current versions).
libraries="lodash@4.18.1 moment@2.31.0 @reduxjs/toolkit@2.15.0 react-redux@9.3.1 i18next@27.2.9 react-i18next@18.0.3
  zod@4.6.7 axios@1.21.1 @tanstack/react-query@5.108.4 rxjs@7.8.2 mathjs@15.2.0"

for tool in node npm cc cargo python3; do
  command -v "$tool" >/dev/null || { echo "error: $tool is required" >&2; exit 1; }
done
command -v /usr/bin/time >/dev/null || { echo "error: /usr/bin/time is required: apt-get install -y time" >&2; exit 1; }
[ -f /usr/include/bzlib.h ] || { echo "error: bspatch.c needs bzip2's headers: apt-get install -y libbz2-dev" >&2; exit 1; }

cache=${UPDRAFT_EXPO_BENCH_CACHE:-/tmp/updraft-expo-export}
work=$(mktemp -d)
if [ -n "${UPDRAFT_EXPO_BENCH_KEEP:-}" ]; then echo "bundles and patches in $work" >&2; else trap 'rm -rf "$work"' EXIT; fi

if [ -n "${PATCH_COST:-}" ]; then
  cp "$PATCH_COST" "$work/patch_cost"
else
  cargo build --release --locked -p updraft-server --example patch_cost >&2
  cp target/release/examples/patch_cost "$work/patch_cost"
fi

# The patch bytes themselves, for the client's bspatch: patch_cost reports sizes only, so a small program with the
# same qbsdiff version (the workspace's Cargo.lock) and the same call writes them; its size must equal patch_cost's.
writer=$cache/patch-writer
mkdir -p "$writer/src"
cat >"$writer/Cargo.toml" <<'TOML'
[package]
name = "patch-writer"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
qbsdiff = "=1.4.4"

[workspace]
TOML
cat >"$writer/src/main.rs" <<'RUST'
use qbsdiff::{Bsdiff, ParallelScheme};
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, target, out] = args.as_slice() else { panic!("usage: patch-writer BASE TARGET PATCH") };
    let (base, target) = (std::fs::read(base).unwrap(), std::fs::read(target).unwrap());
    let mut patch = Vec::new();
    Bsdiff::new(&base, &target).parallel_scheme(ParallelScheme::Never).compare(std::io::Cursor::new(&mut patch)).unwrap();
    std::fs::write(out, patch).unwrap();
}
RUST
grep -q 'qbsdiff = "=1.4.4"' <(grep -A1 '^name = "qbsdiff"' Cargo.lock | sed 's/^version = "\(.*\)"/qbsdiff = "=\1"/') ||
  { echo "error: Cargo.lock's qbsdiff is not 1.4.4: update the version in $0" >&2; exit 1; }
cp Cargo.lock "$writer/Cargo.lock"
cargo build --release --quiet --manifest-path "$writer/Cargo.toml" >&2
cp "$writer/target/release/patch-writer" "$work/patch-writer"

# A minimal Expo app from npm packages, like `create-expo-app --template blank` (which downloads its template).
app=$cache/app
versions="expo@$expo_version react@$react_version react-native@$react_native_version expo-updates@$expo_updates_version $dependency@$dependency_version $libraries"
# shellcheck disable=SC2086
versions=$(echo $versions)
mkdir -p "$app"
if [ "$(cat "$app/.installed" 2>/dev/null)" != "$versions" ]; then
  echo '{ "name": "updraft-patch-bench", "version": "1.0.0", "private": true, "main": "index.js" }' >"$app/package.json"
  rm -rf "$app/node_modules" "$app/package-lock.json"
  # The dependency is installed up front; the base bundle does not contain it until App.js imports it.
  # shellcheck disable=SC2086
  (cd "$app" && npm install --no-audit --no-fund --save-exact $versions >&2)
  echo "$versions" >"$app/.installed"
fi
cat >"$app/app.json" <<'JSON'
{ "expo": { "name": "updraft-patch-bench", "slug": "updraft-patch-bench", "version": "1.0.0" } }
JSON
cat >"$app/index.js" <<'JS'
import { registerRootComponent } from 'expo';
import App from './App';
registerRootComponent(App);
JS

# Two apps: a blank one (texts, a counter, a button, as the blank template), and the same with real libraries a
# production app carries (state, i18n, data fetching, dates, math) in Libraries.js, for a launch bundle of about 5 MB.
# App.js in three versions: the base, a small source change (a string edited, two lines added, as a bug fix would),
# and a dependency change (date-fns imported and used).
write_app() {
  local flavour=$1 title="Press" extra_import="" extra_line="" extra_text="" libraries_import="" libraries_text=""
  case $2 in
    small)
      title="Press again"
      extra_line="  if (count > 9) console.warn('many presses', count);"$'\n'"  const label = count === 1 ? 'time' : 'times';"
      extra_text="      <Text>({label})</Text>" ;;
    dependency)
      extra_import="import { format, formatDistanceToNow } from 'date-fns';"
      extra_text="      <Text>Today is {format(new Date(), 'PPPP')}, started {formatDistanceToNow(started)} ago</Text>" ;;
  esac
  rm -f "$app/Libraries.js"
  if [ "$flavour" = large ]; then
    libraries_import="import { Libraries } from './Libraries';"
    libraries_text="      <Libraries count={count} />"
    cat >"$app/Libraries.js" <<'JS'
import { Text, View } from 'react-native';
import _ from 'lodash';
import moment from 'moment/min/moment-with-locales';
import { configureStore, createSlice } from '@reduxjs/toolkit';
import { Provider, useSelector } from 'react-redux';
import i18next from 'i18next';
import { initReactI18next, useTranslation } from 'react-i18next';
import { z } from 'zod';
import axios from 'axios';
import { QueryClient, QueryClientProvider, useQuery } from '@tanstack/react-query';
import * as rx from 'rxjs';
import { evaluate } from 'mathjs';

const slice = createSlice({ name: 'counter', initialState: { value: 0 }, reducers: { set: (s, a) => { s.value = a.payload; } } });
const store = configureStore({ reducer: { counter: slice.reducer } });
i18next.use(initReactI18next).init({ lng: 'en', resources: { en: { translation: { hello: 'Hello' } } } });
const Item = z.object({ id: z.number(), name: z.string() });
const queryClient = new QueryClient();
const api = axios.create({ baseURL: 'https://example.com' });
const ticks = rx.interval(1000).pipe(rx.map((n) => n * 2), rx.take(3));

function Line({ count }) {
  const value = useSelector((s) => s.counter.value);
  const { t } = useTranslation();
  const query = useQuery({ queryKey: ['item'], queryFn: () => api.get('/item').then((r) => Item.parse(r.data)) });
  store.dispatch(slice.actions.set(count));
  return (
    <View>
      <Text>{t('hello')} {moment().locale('fr').format('LLLL')} {_.capitalize('pressed')} {value}</Text>
      <Text>{query.status} {String(ticks !== null)} {evaluate('sqrt(16) + 2')}</Text>
    </View>
  );
}

export function Libraries({ count }) {
  return (
    <Provider store={store}>
      <QueryClientProvider client={queryClient}>
        <Line count={count} />
      </QueryClientProvider>
    </Provider>
  );
}
JS
  fi
  cat >"$app/App.js" <<JS
import { useState } from 'react';
import { Button, StyleSheet, Text, View } from 'react-native';
$libraries_import
$extra_import

const started = new Date();

export default function App() {
  const [count, setCount] = useState(0);
$extra_line
  return (
    <View style={styles.container}>
      <Text>Open up App.js to start working on your app!</Text>
      <Text>Pressed {count} times</Text>
$libraries_text
$extra_text
      <Button title="$title" onPress={() => setCount(count + 1)} />
    </View>
  );
}

const styles = StyleSheet.create({
  container: { flex: 1, backgroundColor: '#fff', alignItems: 'center', justifyContent: 'center' },
});
JS
}

# One export per platform, as two commands: exporting both platforms in one command sometimes numbers the modules
# differently for the same source (seen once in five runs here), which alone makes a patch of about 100 KB.
export_app() {
  write_app "$1" "$2"
  for platform in android ios; do
    local out=$work/out-$1-$2-$3-$platform
    (cd "$app" && CI=1 npx expo export --platform "$platform" --output-dir "$out" >&2)
    local bundles=("$out/_expo/static/js/$platform"/*.hbc)
    [ ${#bundles[@]} = 1 ] && [ -f "${bundles[0]}" ] || { echo "error: no single .hbc bundle in $out" >&2; exit 1; }
    cp "${bundles[0]}" "$work/$1-$3-$platform.hbc"
  done
}
for flavour in blank large; do
  export_app $flavour base base
  export_app $flavour small small
  export_app $flavour dependency dependency
  # The unchanged source exported again: what two builds of the same code differ by.
  export_app $flavour base rebuild
done

# The client's bspatch, from the expo-updates package the app installed.
printf 'int bspatch_main(int, char **);\nint main(int c, char **v) { return bspatch_main(c, v); }\n' >"$work/main.c"
cc -O2 -o "$work/bspatch" "$app/node_modules/expo-updates/vendor/bspatch/bspatch.c" "$work/main.c" -lbz2

version() { node -p "require('$app/node_modules/$1/package.json').version"; }
echo "expo $(version expo), react-native $(version react-native), hermes-compiler $(version hermes-compiler)," \
  "expo-updates $(version expo-updates) (bspatch), $dependency $(version $dependency), large: $(echo $libraries); patch_cost on $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '\n| app | platform | change | base bytes | identity bytes | brotli-11 bytes | patch bytes | patch / brotli | patch / identity | diff + verify CPU | peak memory |\n'
printf '|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n'
for flavour in blank large; do for platform in android ios; do
  for change in rebuild small dependency; do
    base=$work/$flavour-base-$platform.hbc
    target=$work/$flavour-$change-$platform.hbc
    line=$(/usr/bin/time -f 'TIME %U %S %M' -o "$work/time" "$work/patch_cost" "$base" "$target")
    read -r _ user sys rss <"$work/time"
    patch=$work/$flavour-$change-$platform.patch
    "$work/patch-writer" "$base" "$target" "$patch"
    "$work/bspatch" "$base" "$work/applied" "$patch"
    # brotli as the gateway stores the full file: quality 11, 4 MiB window (src/precompress.rs).
    br=$(node -e "const z = require('zlib'); process.stdout.write(String(z.brotliCompressSync(require('fs').readFileSync(process.argv[1]), { params: { [z.constants.BROTLI_PARAM_QUALITY]: 11, [z.constants.BROTLI_PARAM_LGWIN]: 22 } }).length))" "$target")
    python3 - "$flavour" "$platform" "$change" "$line" "$user" "$sys" "$rss" "$br" "$patch" "$work/applied" "$target" <<'PY'
import hashlib, os, re, sys
flavour, platform, change, line, user, sys_, rss, br, patch, applied, target = sys.argv[1:]
n = {k: int(v) for k, v in re.findall(r"(base|target|patch) (\d+) B", line)}
written = os.path.getsize(patch)
if written != n["patch"]:
    sys.exit(f"error: patch-writer wrote {written} bytes, patch_cost computed {n['patch']}")
digest = lambda p: hashlib.sha256(open(p, "rb").read()).hexdigest()
if digest(applied) != digest(target):
    sys.exit(f"error: the client's bspatch did not reproduce the {platform} {change} bundle")
patch, br = n["patch"], int(br)
label = {"rebuild": "none (same source exported again)", "small": "small source change", "dependency": "new dependency (date-fns)"}[change]
print(f"| {flavour} | {platform} | {label} | {n['base']} | {n['target']} | {br} | {patch} | {100 * patch / br:.1f} % "
      f"| {100 * patch / n['target']:.1f} % | {float(user) + float(sys_):.2f} s | {int(rss) / 1024:.0f} MiB |")
PY
  done
done; done
echo "(every patch applied by the client's bspatch reproduced the new bundle's SHA-256)"
