#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 600) with libFuzzer, starting from the
# committed seed corpus, and prints executions and crashes per target. New corpus entries go to
# a scratch directory, so the committed corpus only changes when someone adds a seed.
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# Needs the nightly toolchain (rustup's `nightly`) and cargo-fuzz; installs cargo-fuzz if it is
# missing. A crash leaves its input under fuzz/artifacts/TARGET/ and makes the script fail:
# copy it into tests/fixtures/hostile/TARGET/ (tests/hostile_input.rs replays every file
# there) and fix the cause.
#
# libFuzzer runs in fork mode, so one slow input does not end the run: timeouts are counted and
# fail the run, except in targets listed in SLOW_OK (onnx_bytes: inside tract's graph analysis,
# which petal cannot interrupt; see README.md).
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-600}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(card_json frame_toml display_spec board_toml init_noise_npy png_metadata onnx_bytes)
fi
# .ci/run lints petal through clippy-driver (stable); the fuzz build is nightly's own.
unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz/run.sh needs rustup's nightly toolchain (rustup toolchain install nightly)" >&2
    exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi
# Sanitizers off: petal has no unsafe code of its own, and the address sanitizer roughly
# halves the executions per second. Debug assertions stay on (overflow checks, bounds).
build_flags=(--release --debug-assertions --sanitizer none)
cargo +nightly fuzz build "${build_flags[@]}"

SLOW_OK=" onnx_bytes "
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
summary=""
failed=0
for t in "${targets[@]}"; do
    mkdir -p "$scratch/$t" "artifacts/$t"
    log="$scratch/$t.log"
    echo "=== $t: ${seconds}s"
    set +e
    # -rss_limit_mb: a target that needs more than this for one input is itself a finding
    # (petal refuses inputs that would not fit a board's memory before allocating).
    cargo +nightly fuzz run "${build_flags[@]}" "$t" "$scratch/$t" "corpus/$t" -- \
        -fork=1 -ignore_timeouts=1 -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=20 \
        >"$log" 2>&1
    rc=$?
    set -e
    # Fork mode's status lines: "#EXECS: cov: ... oom/timeout/crash: O/T/C time: ..."
    last=$(grep -E '^#[0-9]+:' "$log" | tail -n 1 || true)
    execs=$(sed -E 's/^#([0-9]+):.*/\1/' <<<"$last")
    counts=$(sed -E 's|.*oom/timeout/crash: ([0-9]+)/([0-9]+)/([0-9]+).*|\1 \2 \3|' <<<"$last")
    read -r ooms timeouts crashes <<<"${counts:-? ? ?}"
    line=$(printf '%-15s %10s execs  %s crashes  %s timeouts  %s ooms  exit %s' \
        "$t" "${execs:-?}" "$crashes" "$timeouts" "$ooms" "$rc")
    echo "$line"
    summary+="$line"$'\n'
    slow_fails=0
    if [ "$timeouts" != 0 ] && [[ "$SLOW_OK" != *" $t "* ]]; then slow_fails=1; fi
    if [ "$rc" != 0 ] || [ "$crashes" != 0 ] || [ "$ooms" != 0 ] || [ "$slow_fails" != 0 ] \
        || [ -z "$execs" ]; then
        failed=1
        tail -n 40 "$log"
    fi
done
echo "=== fuzz summary (${seconds}s per target)"
printf '%s' "$summary"
exit "$failed"
