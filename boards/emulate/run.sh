#!/usr/bin/env bash
# Boots an emulated 64-bit ARM board (qemu-system-aarch64 -M virt, Cortex-A53 x2, 1 GB, a
# virtio-gpu screen that the guest sees as /dev/fb0) with Debian bookworm and systemd, and checks
# the kiosk path for real: boards/install.sh as a user runs it, the petal unit active, pictures
# painted on fb:/dev/fb0, and a screendump of the emulated screen from the QEMU monitor.
#
#   sudo boards/emulate/run.sh                      # newest aarch64 release build of petal
#   sudo boards/emulate/run.sh --binary PATH --board rpi3 --timeout 1800
#
# The disk image is built once (build-image.sh) and cached in target/emulate/; each run boots a
# copy-on-write overlay of it, so the cache stays clean. Results: target/emulate/last/
# (serial.log, screen.ppm, results/ from the guest: install.log, journal.txt, pictures).
#
# Why virt and not raspi3b: see boards/emulate/README.md. Needs (Debian): qemu-system-arm,
# qemu-utils, debootstrap, e2fsprogs, cpio, kmod, socat. No KVM: TCG, nice -n 10.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=${PETAL_EMULATE_DIR:-$REPO/target/emulate}

binary="" board=rpi3 timeout=1800 picture_timeout=900
while [ $# -gt 0 ]; do
    case $1 in
        --binary) binary=$2; shift 2 ;;
        --board) board=$2; shift 2 ;;
        --timeout) timeout=$2; shift 2 ;;
        --picture-timeout) picture_timeout=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

# The newest aarch64 release build; else any aarch64 build (the ci-arm profile's, opt-level 1).
newest() {
    find "$REPO/target" -path "$1" -name petal -type f -printf '%T@ %p\n' 2>/dev/null |
        sort -rn | head -n1 | cut -d' ' -f2-
}
if [ -z "$binary" ]; then
    binary=$(newest '*aarch64*release*')
    [ -n "$binary" ] || binary=$(newest '*aarch64-unknown-linux-*')
fi
if [ -z "$binary" ] || [ ! -f "$binary" ]; then
    echo "run.sh: no aarch64 petal binary (--binary PATH)" >&2
    exit 1
fi
file -L "$binary" | grep -q 'ARM aarch64' || { echo "run.sh: $binary is not aarch64: $(file -L "$binary")" >&2; exit 1; }
echo "run.sh: binary $binary"

"$HERE/build-image.sh"

RUN=$OUT/last
rm -rf "$RUN"
mkdir -p "$RUN/share/boards" "$RUN/share/results"
# The share: what a user copies to the board (the binary, install.sh, the unit, the profiles).
cp "$binary" "$RUN/share/petal"
cp "$REPO"/boards/install.sh "$REPO"/boards/petal.service "$REPO"/boards/*.toml "$RUN/share/boards/"
cp -r "$REPO/boards/examples" "$RUN/share/boards/"
cp "$HERE/guest-check.sh" "$RUN/share/"
echo "$board" >"$RUN/share/board"
echo "$picture_timeout" >"$RUN/share/picture-timeout"
qemu-img create -q -f qcow2 -F raw -b "$OUT/rootfs.img" "$RUN/overlay.qcow2"

MON=$RUN/monitor.sock
LOG=$RUN/serial.log
start=$(date +%s)
# consoleblank/vt.global_cursor_default: the console's cursor and blanking would draw over
# the framebuffer (boards/README.md says the same for a real Pi). cache=unsafe: the overlay is
# thrown away after the run, so the guest's flushes need not reach the host's disk.
nice -n 10 qemu-system-aarch64 -M virt -cpu cortex-a53 -smp 2 -m 1024 \
    -display none -serial "file:$LOG" -monitor "unix:$MON,server,nowait" -no-reboot \
    -kernel "$OUT/vmlinuz" -initrd "$OUT/initrd.img" \
    -append "console=ttyAMA0 panic=1 consoleblank=0 vt.global_cursor_default=0" \
    -drive "if=none,id=hd,format=qcow2,cache=unsafe,file=$RUN/overlay.qcow2" -device virtio-blk-pci,drive=hd \
    -device virtio-gpu-pci -device virtio-rng-pci \
    -virtfs "local,path=$RUN/share,mount_tag=share,security_model=none,id=share" &
qemu=$!
trap 'kill "$qemu" 2>/dev/null || true' EXIT

hmp() { echo "$1" | socat - "UNIX-CONNECT:$MON" >/dev/null; }
mark() { echo "run.sh: +$(($(date +%s) - start)) s: $*"; }
# The guest's check writes its lines to the serial console and to results/check.log.
CHECK=$RUN/share/results/check.log
has() { grep -aq "$1" "$LOG" "$CHECK" 2>/dev/null; }
line() { grep -ah "$1" "$LOG" "$CHECK" 2>/dev/null | head -n1; }
seen="" status=1
while kill -0 "$qemu" 2>/dev/null; do
    if [ $(($(date +%s) - start)) -gt "$timeout" ]; then
        mark "timeout ($timeout s)"
        hmp "screendump $RUN/screen-timeout.ppm" || true
        break
    fi
    for what in 'Welcome to' 'PETAL-CHECK: system' 'PETAL-CHECK: Startup finished' 'PETAL-CHECK: install.sh exit' \
        'PETAL-CHECK: first picture'; do
        case " $seen " in *" $what "*) continue ;; esac
        if has "$what"; then
            seen="$seen $what"
            mark "$(line "$what" | sed 's/\x1b\[[0-9;]*m//g; s/.*PETAL-CHECK: //' | cut -c1-160)"
        fi
    done
    case " $seen " in *" SCREENDUMP "*) ;; *)
        if has 'PETAL-CHECK: SCREENDUMP-NOW'; then
            seen="$seen SCREENDUMP"
            hmp "screendump $RUN/screen.ppm" && mark "screendump $RUN/screen.ppm"
            sleep 1
            python3 "$HERE/ppm2png.py" "$RUN/screen.ppm" "$RUN/screen.png" || true
        fi ;;
    esac
    if has 'PETAL-CHECK: DONE'; then
        mark "$(line 'PETAL-CHECK: DONE')"
        has 'DONE pictures=[1-9]' && status=0
        break
    fi
    sleep 2
done
for _ in $(seq 30); do kill -0 "$qemu" 2>/dev/null || break; sleep 1; done
sed 's/^/  /' "$CHECK" 2>/dev/null || grep -a 'PETAL-CHECK' "$LOG" | sed 's/^/  /' || true
mark "end; results in $RUN"
exit $status
