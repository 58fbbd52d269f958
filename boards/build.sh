#!/usr/bin/env bash
# Builds petal for a board: the binary for the board's target triple in Cargo's `board` profile
# (release with whole-program LTO, one codegen unit, stripped: smaller, no slower; see
# boards/README.md), with its path and size printed.
#
#   boards/build.sh rpi4                      # profile boards/rpi4.toml
#   boards/build.sh path/to/myboard.toml      # any profile file
#   boards/build.sh --target armv7-unknown-linux-gnueabihf rpi3   # another triple for that board
#   boards/build.sh --generic rpi4            # leave out the profile's rustflags (target-cpu)
#   boards/build.sh --features "" rpi4        # cargo features (default for ARM boards: hardware,
#                                             # i.e. spi + epaper; none for x86_64)
#   boards/build.sh --profile release rpi4    # another Cargo profile (release: a faster build)
#   boards/build.sh --list-targets            # the triples this script knows
#   eval "$(boards/build.sh --env aarch64-unknown-linux-gnu)"    # cross env for cargo by hand
#
# Needs: rustup target add <triple>, and the target's C cross compiler (tract assembles its
# ARM kernels with it) and binutils. On Debian/Ubuntu:
#   aarch64-*:  apt install gcc-aarch64-linux-gnu libc6-dev-arm64-cross
#   arm*-*:     apt install gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
# ARMv6 (rpi-zero, rpi1: arm-unknown-linux-musleabihf) instead needs zig and cargo-zigbuild
# (pip install ziglang==0.17.0 cargo-zigbuild==0.24.0; found in .venv), the nightly toolchain
# with rust-src (std is built from source), and binutils-arm-linux-gnueabihf for strip.
# and qemu-user to run the ARM binaries on a PC (the printed env sets the cargo runner).
#
# The result lands in target/boards/<board>/petal (cargo's own artifact stays under
# target/<triple>/<profile>). Boards with different rustflags for the same triple share cargo's
# target/<triple> folder, so switching between them rebuilds tract (~12 min on 2 cores); use
# --generic to share one build between all boards of a triple.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

KNOWN_TARGETS="aarch64-unknown-linux-gnu aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf arm-unknown-linux-gnueabihf arm-unknown-linux-musleabihf x86_64-unknown-linux-gnu"

die() {
    echo "boards/build.sh: $*" >&2
    exit 1
}

# The cross environment for one triple, as `export` lines: C compiler and archiver for the cc
# crate (tract-linalg's and psm's assembly), cargo's linker and its qemu runner, and the tract
# CPU-detection knobs that qemu-user needs (it shows the host's /proc/cpuinfo to the guest).
# The CPU qemu-user emulates. Its default, "max", has every optional feature (SVE, fp16, ...),
# which no Pi has, and runs tract ~8x slower (one picture, 1 step: 46 s vs 5.6 s); a real
# board's CPU tests the kernels that board runs. Cortex-A72 is the Pi 4's (A53 of the Pi 3 /
# Zero 2 W has the same features for tract: NEON, no dotprod, no fp16); Cortex-A7 is the Pi 2's
# (ARMv7 with NEON and VFPv4, as the 32-bit OS on any Pi 2/3/4 sees).
QEMU_AARCH64_CPU=${PETAL_QEMU_AARCH64_CPU:-cortex-a72}
QEMU_ARM_CPU=${PETAL_QEMU_ARM_CPU:-cortex-a7}

target_env() {
    local t=$1 up cc ar linker runner extra=""
    up=$(echo "$t" | tr 'a-z-' 'A-Z_')
    case $t in
        aarch64-unknown-linux-gnu)
            cc=aarch64-linux-gnu-gcc ar=aarch64-linux-gnu-ar linker=$cc
            runner="qemu-aarch64 -cpu $QEMU_AARCH64_CPU -L /usr/aarch64-linux-gnu" ;;
        aarch64-unknown-linux-musl)
            # Static: rustc links its self-contained musl (crt1.o, libc.a, libunwind.a) with the
            # gcc cross driver; no musl cross gcc is needed.
            cc=aarch64-linux-gnu-gcc ar=aarch64-linux-gnu-ar linker=$cc
            runner="qemu-aarch64 -cpu $QEMU_AARCH64_CPU" ;;
        armv7-unknown-linux-gnueabihf)
            cc=arm-linux-gnueabihf-gcc ar=arm-linux-gnueabihf-ar linker=$cc
            runner="qemu-arm -cpu $QEMU_ARM_CPU -L /usr/arm-linux-gnueabihf"
            # qemu 7.2 shows the host's /proc/cpuinfo, where tract finds no NEON and would test
            # only its VFPv2 fallback kernels; every ARMv7 Raspberry Pi has NEON.
            extra="export TRACT_CPU_ARM32_NEON=\${TRACT_CPU_ARM32_NEON:-true}" ;;
        arm-unknown-linux-gnueabihf)
            # ARMv6 (Pi Zero / Zero W / Pi 1): VFPv2, no NEON. tract builds for it, but Debian's
            # arm-linux-gnueabihf toolchain is ARMv7: its crt1.o and libgcc are Thumb-2 code
            # that an ARM1176 cannot run. An ARMv6 toolchain is needed (cross's Docker image
            # has one): give its prefix in PETAL_ARMV6_PREFIX (e.g. /opt/x-tools/bin/arm-linux-gnueabihf-)
            # and its sysroot in PETAL_ARMV6_SYSROOT (for the qemu runner). See boards/README.md.
            if [ -z "${PETAL_ARMV6_PREFIX:-}" ]; then
                die "$t needs an ARMv6 cross toolchain: Debian's arm-linux-gnueabihf-gcc makes ARMv7 (Thumb-2) start-up code that a Pi Zero/1 cannot run. Set PETAL_ARMV6_PREFIX to an ARMv6 toolchain's prefix, or use 'cross build --target $t' (see boards/README.md)"
            fi
            cc=${PETAL_ARMV6_PREFIX}gcc ar=${PETAL_ARMV6_PREFIX}ar linker=$cc
            runner="qemu-arm -cpu arm1176 -L ${PETAL_ARMV6_SYSROOT:-/}"
            extra="export TRACT_CPU_ARM32_NEON=\${TRACT_CPU_ARM32_NEON:-false}" ;;
        arm-unknown-linux-musleabihf)
            # ARMv6 (Pi Zero / Zero W / Pi 1), static: zig's clang and musl through
            # cargo-zigbuild (PyPI), and std built for ARMv6 by nightly cargo (-Zbuild-std;
            # rustup has no std for this target here). See the top of this file.
            cc=$ROOT/boards/zig-armv6-cc.sh ar=llvm-ar linker=""
            runner="qemu-arm -cpu arm1176"
            extra="export TRACT_CPU_ARM32_NEON=\${TRACT_CPU_ARM32_NEON:-false}" ;;
        x86_64-unknown-linux-gnu)
            echo ": host target, nothing to set"
            return 0 ;;
        *) die "unknown target $t (known: $KNOWN_TARGETS)" ;;
    esac
    local lower=${t//-/_}
    echo "export CC_${lower}=$cc"
    # cargo-zigbuild sets the archiver and linker of its targets itself.
    [ -n "$linker" ] && echo "export AR_${lower}=$ar"
    [ -n "$linker" ] && echo "export CARGO_TARGET_${up}_LINKER=$linker"
    echo "export CARGO_TARGET_${up}_RUNNER=\"$runner\""
    [ -n "$extra" ] && echo "$extra"
    return 0
}

strip_tool() {
    case $1 in
        aarch64-*) echo aarch64-linux-gnu-strip ;;
        arm-unknown-linux-musleabihf) echo arm-linux-gnueabihf-strip ;;
        arm-unknown-*) echo "${PETAL_ARMV6_PREFIX:-arm-linux-gnueabihf-}strip" ;;
        arm*-*) echo arm-linux-gnueabihf-strip ;;
        *) echo strip ;;
    esac
}

# Reads `key = "value"` or `key = [..]` from [section] of a profile (the shipped profiles keep
# each value on one line; petal itself reads them with a real TOML parser).
toml_get() {
    local file=$1 section=$2 key=$3
    awk -v sec="[$section]" -v key="$key" '
        /^[[:space:]]*\[/ { cur = $0; gsub(/[[:space:]]/, "", cur); next }
        cur == sec || (sec == "[]" && cur == "") {
            line = $0; sub(/#.*/, "", line)
            if (match(line, "^[[:space:]]*" key "[[:space:]]*=")) {
                v = substr(line, RLENGTH + 1); gsub(/^[[:space:]]+|[[:space:]]+$/, "", v); print v; exit
            }
        }' "$file"
}

generic=0 target_override="" cargo_profile=board
unset features
while [ $# -gt 0 ]; do
    case $1 in
        --list-targets) printf '%s\n' $KNOWN_TARGETS; exit 0 ;;
        --env) [ $# -ge 2 ] || die "--env needs a target triple"; target_env "$2"; exit 0 ;;
        --generic) generic=1; shift ;;
        --target) [ $# -ge 2 ] || die "--target needs a triple"; target_override=$2; shift 2 ;;
        --features) [ $# -ge 2 ] || die "--features needs a list (spi,epaper or hardware)"; features=$2; shift 2 ;;
        --profile) [ $# -ge 2 ] || die "--profile needs a Cargo profile (board, release)"; cargo_profile=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) break ;;
    esac
done
[ $# -eq 1 ] || die "usage: boards/build.sh [--generic] [--target TRIPLE] [--features LIST] [--profile NAME] BOARD|PROFILE.toml"
# release is Cargo's own; every other profile a board can use is declared in Cargo.toml.
[ "$cargo_profile" = release ] || grep -q "^\[profile\.$cargo_profile\]" "$ROOT/Cargo.toml" ||
    die "unknown Cargo profile '$cargo_profile' (Cargo.toml has board, release, ...)"

spec=$1
if [ -f "$spec" ]; then
    profile=$spec
elif [ -f "$ROOT/boards/$spec.toml" ]; then
    profile=$ROOT/boards/$spec.toml
else
    known=$(cd "$ROOT/boards" && ls ./*.toml | sed 's|^\./||; s|\.toml$||' | tr '\n' ' ')
    die "unknown board '$spec' (known: $known, or a path to a profile .toml)"
fi
board=$(toml_get "$profile" "" name | tr -d '"')
[ -n "$board" ] || die "$profile: no name"
target=$(toml_get "$profile" build target | tr -d '"')
[ -n "$target" ] || die "$profile: [build] has no target"
[ -n "$target_override" ] && target=$target_override
case " $KNOWN_TARGETS " in
    *" $target "*) ;;
    *) die "$profile: target $target is not one this script knows (known: $KNOWN_TARGETS)" ;;
esac

rustflags=""
if [ "$generic" = 0 ] && [ -z "$target_override" ]; then
    # ["-C", "target-cpu=cortex-a72"] -> -C target-cpu=cortex-a72
    rustflags=$(toml_get "$profile" build rustflags | tr -d '[],"')
    rustflags=$(echo $rustflags)
fi

host=$(rustc -vV | sed -n 's/^host: //p')
# A board binary drives every panel a board may have (spi, epaper: pure Rust, ~1 MB);
# --features "" leaves them out. PC builds have none unless asked (window needs SDL2).
if [ -z "${features+set}" ]; then
    [ "$target" = "$host" ] && features="" || features=hardware
fi
cargo_args=(build --profile "$cargo_profile" --locked)
[ -n "$features" ] && cargo_args+=(--features "$features")
zig=0
if [ "$target" = arm-unknown-linux-musleabihf ]; then
    zig=1
    # Rust's own musl start-up files are part of the std rustup does not have here: zig's are
    # linked instead.
    rustflags="${rustflags:+$rustflags }-C link-self-contained=no"
    [ -x "$ROOT/.venv/bin/cargo-zigbuild" ] && export PATH="$ROOT/.venv/bin:$PATH"
    command -v cargo-zigbuild >/dev/null ||
        die "$target needs zig and cargo-zigbuild: pip install ziglang==0.17.0 cargo-zigbuild==0.24.0 (into .venv)"
    rustup run nightly rustc --version >/dev/null 2>&1 || die "$target needs the nightly toolchain (std is built from source)"
    rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^rust-src' ||
        die "$target needs std's source: rustup component add rust-src --toolchain nightly"
    cargo_args=(+nightly zigbuild -Zbuild-std=std,panic_abort "${cargo_args[@]:1}")
    # A rustc wrapper from the stable toolchain (CI runs clippy-driver as one) would build std
    # from stable's sources, which rustup does not have.
    unset RUSTC_WORKSPACE_WRAPPER RUSTC_WRAPPER
fi
if [ "$target" = "$host" ] && [ -z "$rustflags" ]; then
    # Same artifacts as a plain `cargo build --profile P`: no second build of tract.
    out_dir=$TARGET_DIR/$cargo_profile
else
    cargo_args+=(--target "$target")
    out_dir=$TARGET_DIR/$target/$cargo_profile
    if [ "$zig" = 0 ] && command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$target"; then
        die "Rust's std for $target is not installed: rustup target add $target"
    fi
fi
eval "$(target_env "$target")"
if [ -n "$rustflags" ]; then
    up=$(echo "$target" | tr 'a-z-' 'A-Z_')
    export "CARGO_TARGET_${up}_RUSTFLAGS=$rustflags"
fi
cc_var=CC_${target//-/_}
if [ -n "${!cc_var:-}" ] && ! command -v "${!cc_var}" >/dev/null; then
    die "${!cc_var} not found: install the $target cross compiler (see the top of $0)"
fi

echo "boards/build.sh: $board -> $target, profile $cargo_profile${rustflags:+ (rustflags: $rustflags)}${features:+ (features: $features)}" >&2
start=$(date +%s)
(cd "$ROOT" && cargo "${cargo_args[@]}" --bin petal)
dest=$TARGET_DIR/boards/$board
mkdir -p "$dest"
cp "$out_dir/petal" "$dest/petal"
"$(strip_tool "$target")" "$dest/petal"
size=$(stat -c %s "$dest/petal")
echo "boards/build.sh: built in $(( $(date +%s) - start ))s" >&2
echo "$dest/petal $size bytes ($(( (size + 524288) / 1048576 )) MiB), $target"
