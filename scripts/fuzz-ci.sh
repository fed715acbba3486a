#!/usr/bin/env bash
# Fuzz smoke for CI (called by .ci/run): builds the cargo-fuzz targets in fuzz/ and runs each
# for FUZZ_SECONDS (default 30) from the checked-in seed corpus. cargo-fuzz needs a nightly
# toolchain; without one, the seed corpus is replayed on stable through the same harnesses
# (tests/fuzz_corpus.rs) and the script says so. A crash fails the script; libFuzzer leaves the
# input in fuzz/artifacts/<target>/.
#
#   FUZZ_SECONDS=30 scripts/fuzz-ci.sh     # FUZZ_SECONDS=0: only the stable corpus replay
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${FUZZ_SECONDS:-30}"
targets=(trace_azure config_toml telemetry)

replay_on_stable() {
  echo "== fuzz: replaying fuzz/corpus/* on stable (tests/fuzz_corpus.rs)"
  cargo test --test fuzz_corpus
}

if [ "$secs" = 0 ]; then
  echo "== fuzz: FUZZ_SECONDS=0, no fuzzing"
  replay_on_stable
  exit 0
fi
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "== fuzz: no nightly toolchain (\`cargo +nightly\` fails), and cargo-fuzz needs one:" \
    "NOT fuzzing; install it with \`rustup toolchain install nightly\`"
  replay_on_stable
  exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== fuzz: installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi

echo "== fuzz: building ${targets[*]} ($(cargo +nightly --version))"
cargo +nightly fuzz build
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for t in "${targets[@]}"; do
  echo "== fuzz: $t for ${secs}s"
  # New inputs go to a scratch corpus (first directory); the checked-in seeds are only read.
  mkdir -p "$scratch/$t"
  dict=()
  [ -f "fuzz/dict/$t.dict" ] && dict=(-dict="fuzz/dict/$t.dict")
  cargo +nightly fuzz run "$t" "$scratch/$t" "fuzz/corpus/$t" -- \
    -max_total_time="$secs" -timeout=60 -rss_limit_mb=4096 -print_final_stats=1 "${dict[@]}"
done
echo "== fuzz: ${#targets[@]} targets ran ${secs}s each without a crash"
