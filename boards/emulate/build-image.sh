#!/usr/bin/env bash
# Builds the emulated board's disk: Debian bookworm arm64 (minbase + systemd, udev, kmod), a
# kernel and an initramfs, cached under target/emulate/ (rootfs.img, vmlinuz, initrd.img).
# run.sh calls it when the cache is missing; `--force` rebuilds.
#
# arm64 maintainer scripts cannot run on an x86 host without help:
#   1. debootstrap --foreign on the host (download and unpack only);
#   2. the kernel and busybox-static .debs unpacked here, depmod (arch-independent) here, and
#      a small initramfs of busybox + the virtio/ext4 modules (initrd-init);
#   3. debootstrap --second-stage (stage2.sh): in a chroot on the host where binfmt_misc and
#      qemu-user-static run arm64 code, else in one boot under qemu-system-aarch64 with
#      petal.init=/stage2.sh; mkfs.ext4 -d makes the image (no loop mount needed).
# The kernel .deb is not installed by dpkg in the guest: its postinst would run update-initramfs
# under emulation (slow) for an initrd we do not use; its modules are copied in instead.
# Needs (Debian): debootstrap qemu-system-arm (>= 7.2) e2fsprogs cpio kmod.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=${PETAL_EMULATE_DIR:-$REPO/target/emulate}
MIRROR=${PETAL_EMULATE_MIRROR:-http://deb.debian.org/debian}
W=$OUT/work
NICE=(nice -n 10)

# The cache's key: the scripts that make the image and the mirror. Another key, another image.
key=$(cat "$HERE/build-image.sh" "$HERE/stage2.sh" "$HERE/initrd-init" <(echo "$MIRROR") | sha256sum | cut -c1-16)
if [ "${1:-}" != --force ] && [ -f "$OUT/rootfs.img" ] && [ -f "$OUT/vmlinuz" ] && [ -f "$OUT/initrd.img" ] &&
    [ "$(cat "$OUT/image.key" 2>/dev/null)" = "$key" ]; then
    echo "build-image: cached: $OUT/rootfs.img (key $key)"
    exit 0
fi
[ "$(id -u)" = 0 ] || { echo "build-image: needs root (debootstrap, file ownership in the image)" >&2; exit 1; }
mkdir -p "$W"
rm -rf "$W/rootfs" "$W/kpkg" "$W/bbpkg" "$W/initrd" "$OUT/rootfs.img"
stamp() { date +%s; }

t0=$(stamp)
"${NICE[@]}" debootstrap --foreign --arch=arm64 --variant=minbase \
    --include=systemd-sysv,udev,kmod,busybox-static,linux-image-arm64 \
    bookworm "$W/rootfs" "$MIRROR" >"$W/stage1.log" 2>&1 ||
    { tail -n 20 "$W/stage1.log"; exit 1; }
t1=$(stamp)
echo "build-image: stage 1 (debootstrap --foreign): $((t1 - t0)) s"

# The kernel: unpacked here, and taken out of the second stage's package list.
archives=$W/rootfs/var/cache/apt/archives
kdeb=$(ls "$archives"/linux-image-[0-9]*_arm64.deb)
dpkg-deb -x "$kdeb" "$W/kpkg"
dpkg-deb -x "$(ls "$archives"/busybox-static_*_arm64.deb)" "$W/bbpkg"
kver=$(basename "$(ls -d "$W"/kpkg/lib/modules/*)")
depmod -b "$W/kpkg" "$kver"
sed -i '/^linux-image/d; s/ linux-image[^ ]*//g' "$W/rootfs/debootstrap/base"
rm -f "$archives"/linux-image-*.deb
mkdir -p "$W/rootfs/lib/modules"
cp -a "$W/kpkg/lib/modules/$kver" "$W/rootfs/lib/modules/"
cp "$W/kpkg/boot/vmlinuz-$kver" "$OUT/vmlinuz"
cp "$W/kpkg/boot/config-$kver" "$OUT/config"
cp -r "$W/kpkg/usr/lib/linux-image-$kver" "$OUT/dtbs"

# The initramfs: busybox and the modules to reach an ext4 root on virtio-blk (PCI or MMIO),
# in dependency order.
mkdir -p "$W/initrd/bin" "$W/initrd/modules"
cp "$W/bbpkg/bin/busybox" "$W/initrd/bin/busybox"
install -m 0755 "$HERE/initrd-init" "$W/initrd/init"
: >"$W/initrd/modules.order"
kmods=$W/kpkg/lib/modules/$kver
for want in virtio_pci virtio_mmio virtio_blk crc32c_generic ext4; do
    line=$(grep -E "/$want\.ko:" "$kmods/modules.dep") || { echo "build-image: no module $want" >&2; exit 1; }
    # modules.dep: "mod.ko: dep1.ko dep2.ko" (deps first when loading, last listed first).
    deps=$(echo "${line#*:}" | tr ' ' '\n' | tac)
    for path in $deps "${line%%:*}"; do
        name=$(basename "$path")
        grep -qx "$name" "$W/initrd/modules.order" && continue
        cp "$kmods/$path" "$W/initrd/modules/$name"
        echo "$name" >>"$W/initrd/modules.order"
    done
done
(cd "$W/initrd" && find . | cpio -o -H newc --quiet | gzip -1) >"$OUT/initrd.img"

# debootstrap, run in a container, makes /proc a link to the host's /proc: a directory here.
if [ -L "$W/rootfs/proc" ]; then rm "$W/rootfs/proc" && mkdir -m 0555 "$W/rootfs/proc"; fi
# dpkg fsyncs every file it unpacks; under emulation that is most of stage 2's time, and a
# half-written image is thrown away anyway. stage2.sh removes this file when done.
echo force-unsafe-io >"$W/rootfs/etc/dpkg/dpkg.cfg.d/petal-emulate-unsafe-io"
install -m 0755 "$HERE/stage2.sh" "$W/rootfs/stage2.sh"

# Can this host run arm64 code in a chroot? binfmt_misc with qemu-user-static's interpreter
# registered with the F flag (opened at registration, so it works inside the chroot).
# PETAL_EMULATE_STAGE2=guest skips the host route.
host_runs_arm64() {
    [ "${PETAL_EMULATE_STAGE2:-auto}" != guest ] || return 1
    local bf=/proc/sys/fs/binfmt_misc
    [ -e $bf/register ] || mount -t binfmt_misc binfmt_misc $bf 2>/dev/null || return 1
    if [ ! -e $bf/qemu-aarch64 ]; then
        [ -f /usr/lib/binfmt.d/qemu-aarch64.conf ] || return 1
        cat /usr/lib/binfmt.d/qemu-aarch64.conf >$bf/register 2>/dev/null || return 1
    fi
    chroot "$W/rootfs" /bin/true 2>/dev/null
}

if host_runs_arm64; then
    # Stage 2 on the host: qemu-user runs only the maintainer scripts' code, no emulated kernel
    # or disk (measured 384 s against 648 s in the guest, both beside a cargo build).
    route=host
    t2=$(stamp)
    echo "build-image: kernel, initramfs: $((t2 - t1)) s"
    mount -t proc proc "$W/rootfs/proc"
    set +e
    "${NICE[@]}" chroot "$W/rootfs" /stage2.sh --chroot >"$W/stage2.log" 2>&1
    set -e
    # debootstrap may have unmounted it already.
    umount "$W/rootfs/proc" 2>/dev/null || true
    rm -f "$W/rootfs/stage2.sh"
    t3=$(stamp)
    if grep -q STAGE2-OK "$W/stage2.log"; then
        "${NICE[@]}" mkfs.ext4 -q -F -L petalroot -d "$W/rootfs" "$OUT/rootfs.stage1.img" 2G
        t3=$(stamp)
    fi
else
    route=guest
    "${NICE[@]}" mkfs.ext4 -q -F -L petalroot -d "$W/rootfs" "$OUT/rootfs.stage1.img" 2G
    t2=$(stamp)
    echo "build-image: kernel, initramfs, ext4 image: $((t2 - t1)) s"
    # Stage 2, inside the guest. cache=unsafe: the guest's flushes are not passed to the host
    # disk (the image is kept only if stage 2 ends with STAGE2-OK and qemu has exited).
    "${NICE[@]}" qemu-system-aarch64 -M virt -cpu cortex-a53 -smp 2 -m 1024 \
        -display none -nic none -serial "file:$W/stage2.log" -monitor none -no-reboot \
        -kernel "$OUT/vmlinuz" -initrd "$OUT/initrd.img" \
        -append "console=ttyAMA0 petal.init=/stage2.sh panic=1" \
        -drive "if=none,id=hd,format=raw,cache=unsafe,file=$OUT/rootfs.stage1.img" -device virtio-blk-pci,drive=hd \
        -device virtio-rng-pci
    t3=$(stamp)
fi
if ! grep -q STAGE2-OK "$W/stage2.log"; then
    tail -n 40 "$W/stage2.log"
    echo "build-image: stage 2 ($route) failed (log: $W/stage2.log)" >&2
    exit 1
fi
grep '^stage2:' "$W/stage2.log" || true
echo "build-image: stage 2 (debootstrap --second-stage, on the $route): $((t3 - t2)) s"
mv "$OUT/rootfs.stage1.img" "$OUT/rootfs.img"
echo "$key" >"$OUT/image.key"
printf 'stage1 %s\nimage %s\nstage2 %s\nroute %s\n' $((t1 - t0)) $((t2 - t1)) $((t3 - t2)) "$route" >"$OUT/build-times.txt"
echo "build-image: done: $OUT/rootfs.img ($((t3 - t0)) s)"
