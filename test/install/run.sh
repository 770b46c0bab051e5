#!/usr/bin/env bash
# The install contract, tested from the packed tarball (`npm run test:install`; CI runs it after
# `npm test`). Needs the npm registry (for bptt's dependencies) and, for the source builds, a C++
# compiler; takes about 15 minutes on 2 cores, most of it the native test suites, run twice.
#  1. `npm pack` makes the tarball; its prepack script builds the prebuilt binary.
#  2. Installed into an empty project where no C++ compiler, make or python3 is on the PATH, it
#     compiles nothing and loads the prebuilt binary; require() and import train with it, the CLI
#     trains and samples, the type test compiles against its declarations, and the repository's
#     native test suites pass against that binary.
#  3. Installed with --build-from-source it compiles, and the native test suites pass against
#     that build.
#  4. Where no prebuilt binary fits (a musl system, as node-gyp-build sees it with LIBC=musl) the
#     install compiles from source; without a compiler it fails, saying what it looked for and
#     how to fix it.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/bptt-install.XXXXXX")
trap 'rm -rf "$work"' EXIT

# An outer `npm run` exports npm_config_* (local_prefix among them, which would point the
# installs below at the repository): the installs here must see only their own project.
for v in $(compgen -e); do
  case $v in npm_*) unset "$v" ;; esac
done

passed=0
pass() { passed=$((passed + 1)); echo "ok $passed - $*"; }
fail() { echo "not ok - $*" >&2; exit 1; }
step() { printf '\n== %s\n' "$*"; }

native_suites() { # $1: the bptt.node to test
  (cd "$repo" && BPTT_ADDON_PATH="$1" node --expose-gc node_modules/jest/bin/jest.js test/native-vs-oracle.test.ts test/kernels.test.ts test/rnn.test.ts test/engine-native-vs-oracle.test.ts test/engine-native.test.ts)
}

new_project() { # $1: folder; an empty npm project
  mkdir -p "$1" && (cd "$1" && npm init -y > /dev/null)
}

step "npm pack"
(cd "$repo" && npm pack --pack-destination "$work" --loglevel warn)
tarball=$(echo "$work"/bptt-*.tgz)
[ -f "$tarball" ] || fail "npm pack made no tarball"
listing=$(tar -tzf "$tarball")
for f in prebuilds/linux-x64/node.napi.glibc.node dist/index.js dist/index.mjs dist/index.d.ts dist/cli.js binding.gyp native/sources.json scripts/install.js; do
  grep -qx "package/$f" <<< "$listing" || fail "the tarball lacks $f"
done
[ "$(grep -c '\.node$' <<< "$listing")" = 1 ] || fail "the tarball should hold exactly one .node file, the prebuilt one"
if grep -E '^package/(build|build-prebuilt)/' <<< "$listing"; then fail "the tarball holds build output"; fi
pass "the tarball holds the prebuilt binary, the JS, the declarations and the sources, and no build output"

step "install with no compiler, make or python3 on the PATH"
# The PATH holds node, npm and npx, and sh (npm runs lifecycle scripts with it): nothing else.
bin="$work/bin"
mkdir "$bin"
for tool in node npm npx sh; do ln -s "$(command -v "$tool")" "$bin/$tool"; done
# A clean environment besides (node-gyp would also take a compiler or python from CC, CXX, PYTHON
# or npm_config_python), keeping what reaching the registry needs.
keep=()
for v in HOME USER TMPDIR LANG CI NODE_EXTRA_CA_CERTS SSL_CERT_FILE SSL_CERT_DIR HTTP_PROXY HTTPS_PROXY NO_PROXY http_proxy https_proxy no_proxy; do
  if [ -n "${!v:-}" ]; then keep+=("$v=${!v}"); fi
done
hidden() { env -i "${keep[@]}" PATH="$bin" "$@"; } # args: [NAME=VALUE...] command...
for tool in g++ gcc c++ cc clang make python3 python; do
  if hidden /bin/sh -c "command -v $tool"; then fail "$tool is on the hidden PATH"; fi
done
pass "no g++, gcc, c++, cc, clang, make, python3 or python can be found on the hidden PATH"

app="$work/app"
new_project "$app"
if ! (cd "$app" && hidden npm install --foreground-scripts "$tarball") 2>&1 | tee "$work/install.log"; then fail "npm install of the tarball failed with no compiler"; fi
installed="$app/node_modules/bptt"
[ ! -e "$installed/build" ] || fail "the install compiled something: $installed/build exists"
if grep -q 'gyp info' "$work/install.log"; then fail "the install ran node-gyp"; fi
loaded=$(cd "$app" && hidden node -e "console.log(require('node-gyp-build').resolve('node_modules/bptt'))")
[ "$loaded" = "$installed/prebuilds/linux-x64/node.napi.glibc.node" ] || fail "the loader picks $loaded, not the prebuilt binary"
pass "npm install of the tarball compiled nothing and its loader picks the prebuilt binary"

cp "$repo/test/install/smoke.cjs" "$repo/test/install/smoke.mjs" "$app/"
(cd "$app" && hidden node smoke.cjs)
pass "require('bptt') loads the native backend; its gradients match the oracle's on every ISA; it trains"
(cd "$app" && hidden node smoke.mjs)
pass "import from 'bptt' gives require's exports"

(cd "$app" && hidden npx bptt train --steps 5 --out m.safetensors) 2> "$work/cli.err" || { cat "$work/cli.err"; fail "bptt train failed"; }
cat "$work/cli.err"
[ -s "$app/m.safetensors" ] || fail "bptt train wrote no checkpoint"
if grep -q 'did not load' "$work/cli.err"; then fail "the CLI fell back to the reference backend"; fi
sampled=$(cd "$app" && hidden npx bptt sample m.safetensors --length 40)
[ -n "$sampled" ] || fail "bptt sample printed nothing"
pass "npx bptt train --steps 5 --out m.safetensors works on the native backend; bptt sample reads the checkpoint"

(cd "$app" && hidden npm install --no-save --loglevel warn "typescript@$(node -p "require('$repo/package.json').devDependencies.typescript")" "@types/node@$(node -p "require('$repo/package.json').devDependencies['@types/node']")")
cp -r "$repo/test/types" "$app/types"
(cd "$app" && hidden npx tsc -p types/tsconfig.json && hidden npx tsc -p types/tsconfig.nodenext.json)
pass "the type test compiles against the installed declarations (CommonJS and nodenext, ESM importer too)"

native_suites "$installed/prebuilds/linux-x64/node.napi.glibc.node"
pass "the native test suites pass against the installed prebuilt binary"

step "install with --build-from-source"
src="$work/from-source"
new_project "$src"
(cd "$src" && npm install --foreground-scripts "$tarball" --build-from-source) > "$work/from-source.log" 2>&1 || { cat "$work/from-source.log"; fail "npm install --build-from-source failed"; }
[ -f "$src/node_modules/bptt/build/Release/bptt.node" ] || fail "--build-from-source compiled nothing"
loaded=$(cd "$src" && node -e "console.log(require('node-gyp-build').resolve('node_modules/bptt'))")
[ "$loaded" = "$src/node_modules/bptt/build/Release/bptt.node" ] || fail "the loader picks $loaded, not the build from source"
native_suites "$src/node_modules/bptt/build/Release/bptt.node"
pass "npm install --build-from-source compiles, and the native test suites pass against that build"

step "no prebuilt binary fits (LIBC=musl)"
musl="$work/musl"
new_project "$musl"
(cd "$musl" && LIBC=musl npm install --foreground-scripts "$tarball") > "$work/musl.log" 2>&1 || { cat "$work/musl.log"; fail "npm install with no fitting prebuilt binary failed to compile"; }
[ -f "$musl/node_modules/bptt/build/Release/bptt.node" ] || fail "no prebuilt binary fits, yet the install compiled nothing"
(cd "$musl" && LIBC=musl node -e "require('bptt').isa()")
pass "with no fitting prebuilt binary the install compiles from source, and the build loads"

nocc="$work/musl-no-compiler"
new_project "$nocc"
if (cd "$nocc" && hidden LIBC=musl npm install "$tarball") > "$work/nocc.log" 2>&1; then fail "the install succeeded with no fitting binary and no compiler"; fi
for expected in 'Looked for a build from source in' 'prebuilt binary in' 'this package ships prebuilt binaries for linux-x64/node.napi.glibc.node' 'npm rebuild bptt --build-from-source'; do
  grep -qF "$expected" "$work/nocc.log" || { cat "$work/nocc.log"; fail "the failed install does not say: $expected"; }
done
grep -F 'bptt:' -A 2 "$work/nocc.log"
pass "with neither, npm install fails and says what it looked for, where, and how to fix it"

echo
echo "test:install: $passed passed, 0 failed"
