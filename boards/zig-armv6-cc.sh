#!/bin/sh
# The C compiler and linker for ARMv6 (Pi Zero / Zero W / Pi 1) static musl builds: zig's clang
# and musl, through cargo-zigbuild (both from PyPI; boards/build.sh sets this up).
#
# tract-linalg assembles its ARMv7 NEON kernels for every 32-bit ARM target and picks them at
# run time only where the CPU has NEON, which an ARM1176 never has. clang accepts NEON
# instructions only for an ARMv7 CPU, so those files (and only those) are assembled for a
# Cortex-A7; everything else, start-up code included, is ARMv6 with VFPv2.
# (The linker keeps the whole binary's attributes at ARMv6: CI checks them with readelf -A.)
case "$*" in
    *armv7neon_*) neon=-mcpu=cortex-a7 ;;
    *) neon= ;;
esac
exec "${PETAL_CARGO_ZIGBUILD:-cargo-zigbuild}" zig cc -- -g -fno-sanitize=all \
    -mcpu=generic+v6+strict_align+vfp2-d32 -target arm-linux-musleabihf "$@" $neon
