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

binary="" board=rpi3 timeout=1500 picture_timeout=300
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

# The host's picture for the screen check: petal painting the gallery's picture again from its
# metadata (`generate --from`). An x86 build (CI has it); else none, and the check says so.
host_petal=${PETAL_HOST_BINARY:-$REPO/target/release/petal}

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
# NTP's answer, for the clock-jump check: the host's time.
date +%s >"$RUN/share/host-epoch"
qemu-img create -q -f qcow2 -F raw -b "$OUT/rootfs.img" "$RUN/overlay.qcow2"

MON=$RUN/monitor.sock
LOG=$RUN/serial.log
CHECK=$RUN/share/results/check.log
start=$(date +%s)
hmp() { echo "$1" | socat - "UNIX-CONNECT:$MON" >/dev/null; }
mark() { echo "run.sh: +$(($(date +%s) - start)) s: $*"; }
has() { grep -aq "$1" "$CHECK" 2>/dev/null; }
qemu=""
trap '[ -z "$qemu" ] || kill "$qemu" 2>/dev/null || true' EXIT
# No real-time clock: the board boots at a wrong date, 2001-01-01, at a time of day 12 hours
# away from the host's (guest-check.sh sets quiet hours around the wrong time, which must not
# cover the real time it later jumps to).
rtc_base=2001-01-01T$(date -u -d '+12 hours' +%H:%M:%S)

# boot PHASE UNTIL: boots the board (the same overlay each time: a reboot keeps the disk) and
# follows the check until the line UNTIL, qemu's exit or the timeout.
boot() {
    local phase=$1 until=$2 shown
    shown=$(cat "$CHECK" 2>/dev/null | wc -l)
    echo "$phase" >"$RUN/share/phase"
    rm -f "$RUN/share/screendump-done"
    # consoleblank/vt.global_cursor_default: the console's cursor and blanking would draw
    # over the framebuffer (boards/README.md says the same for a real Pi). cache=unsafe: the
    # overlay is thrown away after the run. -no-reboot: the guest's reboot ends this qemu, and
    # the next boot() starts the machine again on the same disk.
    nice -n 10 qemu-system-aarch64 -M virt -cpu cortex-a53 -smp 2 -m 1024 \
        -display none -nic none -serial "file:$LOG.$phase" -monitor "unix:$MON,server,nowait" -no-reboot \
        -rtc "base=$rtc_base,clock=host" \
        -kernel "$OUT/vmlinuz" -initrd "$OUT/initrd.img" \
        -append "console=ttyAMA0 panic=1 consoleblank=0 vt.global_cursor_default=0" \
        -drive "if=none,id=hd,format=qcow2,cache=unsafe,file=$RUN/overlay.qcow2" -device virtio-blk-pci,drive=hd \
        -device virtio-gpu-pci -device virtio-rng-pci \
        -virtfs "local,path=$RUN/share,mount_tag=share,security_model=none,id=share" &
    qemu=$!
    mark "phase $phase: booting (clock at $rtc_base)"
    while kill -0 "$qemu" 2>/dev/null; do
        if [ $(($(date +%s) - start)) -gt "$timeout" ]; then
            mark "timeout ($timeout s)"
            hmp "screendump $RUN/screen-timeout.ppm" || true
            kill "$qemu" 2>/dev/null || true
            return 1
        fi
        # New check lines as they come.
        if [ -f "$CHECK" ]; then
            local n; n=$(wc -l <"$CHECK")
            if [ "$n" -gt "$shown" ]; then
                sed -n "$((shown + 1)),${n}p" "$CHECK" | sed 's/^PETAL-CHECK: //' | cut -c1-200 |
                    while IFS= read -r l; do mark "$l"; done
                shown=$n
            fi
        fi
        if [ "$phase" = 1 ] && [ ! -e "$RUN/share/screendump-done" ] && has 'PETAL-CHECK: SCREENDUMP-NOW'; then
            hmp "screendump $RUN/screen.ppm" && mark "screendump $RUN/screen.ppm"
            sleep 1
            touch "$RUN/share/screendump-done"
        fi
        has "PETAL-CHECK: $until" && break
        sleep 2
    done
    # The guest reboots or powers off by itself; give it time, then stop qemu.
    for _ in $(seq 60); do kill -0 "$qemu" 2>/dev/null || break; sleep 1; done
    kill "$qemu" 2>/dev/null || true
    wait "$qemu" 2>/dev/null || true
    qemu=""
    cat "$LOG.$phase" >>"$LOG"
    has "PETAL-CHECK: $until"
}

host_pass=0 host_fail=0
host() { # host PASS|FAIL text
    echo "PETAL-CHECK: $1 $2" >>"$CHECK"
    mark "$1 $2"
    if [ "$1" = PASS ]; then host_pass=$((host_pass + 1)); else host_fail=$((host_fail + 1)); fi
}

phases_ok=1
boot 1 REBOOT || { host FAIL "phase 1 (install, boot, screen, clock, crash, stop) did not finish"; phases_ok=0; }
if [ "$phases_ok" = 1 ]; then
    boot 2 'DONE phase 2' || host FAIL "phase 2 (after the reboot) did not finish"
fi

# The screen: the screendump against the gallery's picture painted again on the host.
source_png=$RUN/share/results/screen-source.png
if [ -f "$RUN/screen.ppm" ]; then
    python3 "$HERE/ppm2png.py" "$RUN/screen.ppm" "$RUN/screen.png" || true
fi
if [ ! -f "$RUN/screen.ppm" ] || [ ! -f "$source_png" ]; then
    host FAIL "screen: no screendump or no gallery picture to compare"
elif [ ! -x "$host_petal" ]; then
    host FAIL "screen: no host petal at $host_petal to paint the picture again (PETAL_HOST_BINARY)"
elif ! "$host_petal" --quiet generate --from "$source_png" --out "$RUN/screen-expected.png" >"$RUN/repro.log" 2>&1; then
    host FAIL "screen: petal generate --from failed: $(tail -n1 "$RUN/repro.log")"
elif out=$(python3 "$HERE/compare-screen.py" "$RUN/screen.ppm" "$RUN/screen-expected.png" --max 8 --mean 0.5); then
    host PASS "screen: the screendump is the picture petal generate --from paints on the host: $out"
else
    host FAIL "screen: $out"
fi
# Every picture the board kept decodes as a whole PNG here too (CRC and zlib checked).
for phase in 1 2; do
    files=("$RUN"/share/results/gallery-phase$phase/*.png)
    [ -e "${files[0]}" ] || continue
    if out=$(python3 "$HERE/compare-screen.py" --png-whole "${files[@]}"); then
        host PASS "gallery: phase $phase: $out"
    else
        host FAIL "gallery: phase $phase: $out"
    fi
done

passed=$(grep -c '^PETAL-CHECK: PASS' "$CHECK" 2>/dev/null || true)
failed=$(grep -c '^PETAL-CHECK: FAIL' "$CHECK" 2>/dev/null || true)
grep '^PETAL-CHECK: FAIL' "$CHECK" 2>/dev/null | sed 's/^PETAL-CHECK: /  /' || true
mark "end; results in $RUN"
echo "${passed:-0} passed, ${failed:-0} failed"
[ "${failed:-0}" = 0 ] && [ "${passed:-0}" -gt 0 ]
