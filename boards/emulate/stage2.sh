#!/bin/sh
# debootstrap's second stage (the arm64 maintainer scripts), then the settings the check boots
# need, run once when build-image.sh makes the image. Two ways, the same script:
#   - `chroot ROOTFS /stage2.sh --chroot` on the host, when binfmt_misc runs arm64 code there
#     through qemu-user-static (faster: no emulated kernel, no emulated disk);
#   - as the emulated board's first init (petal.init=/stage2.sh) under qemu-system-aarch64,
#     where the host cannot run arm64 code; it powers the machine off at the end.
# Prints STAGE2-OK or STAGE2-FAIL last.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
in_chroot=0
[ "${1:-}" = --chroot ] && in_chroot=1
if [ "$in_chroot" = 0 ]; then
    mount -t proc proc /proc
    mount -t sysfs sysfs /sys
    [ -e /dev/null ] || mount -t devtmpfs devtmpfs /dev
    mount -o remount,rw /
fi
finish() {
    echo "$1"
    if [ "$in_chroot" = 1 ]; then
        [ "$1" = STAGE2-OK ]
        exit
    fi
    sync
    # debootstrap unmounts /proc when it is done.
    [ -e /proc/sysrq-trigger ] || mount -t proc proc /proc
    echo o >/proc/sysrq-trigger
    sleep 10
}
uptime() { cut -d' ' -f1 /proc/uptime 2>/dev/null || echo "?"; }
start=$(uptime)
if ! /debootstrap/debootstrap --second-stage; then
    tail -n 30 /debootstrap/debootstrap.log 2>/dev/null
    finish STAGE2-FAIL
fi
[ -e /proc/uptime ] || mount -t proc proc /proc
echo "stage2: debootstrap second stage done, uptime $start -> $(uptime)"

echo petal-emu >/etc/hostname
printf '127.0.0.1 localhost\n127.0.1.1 petal-emu\n' >/etc/hosts
passwd -d root
mkdir -p /mnt/share
cat >/etc/fstab <<'EOF'
# Written by boards/emulate/stage2.sh. The initramfs mounts / read-write (no fsck there).
/dev/vda / ext4 defaults 0 0
# The host's share (qemu -virtfs, mount tag "share"): the petal binary, boards/, results.
share /mnt/share 9p trans=virtio,version=9p2000.L,msize=262144,nofail,x-systemd.device-timeout=10s 0 0
EOF
# The screen belongs to petal (a kiosk): no login prompt drawn on tty1 over the framebuffer.
systemctl mask getty@tty1.service
# A one-shot check the host drives through the share (run.sh puts guest-check.sh there).
# Type=simple, so that boot does not wait for it (it waits for boot: is-system-running --wait).
cat >/etc/systemd/system/petal-emulate-check.service <<'EOF'
[Unit]
Description=petal emulation check (boards/emulate/guest-check.sh from the host's share)
RequiresMountsFor=/mnt/share
ConditionPathExists=/mnt/share/guest-check.sh

[Service]
Type=simple
ExecStart=/bin/sh /mnt/share/guest-check.sh
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyAMA0

[Install]
WantedBy=multi-user.target
EOF
systemctl enable petal-emulate-check.service
rm -f /var/cache/apt/archives/*.deb /etc/dpkg/dpkg.cfg.d/petal-emulate-unsafe-io
echo "stage2: configured, uptime $(uptime)"
finish STAGE2-OK
