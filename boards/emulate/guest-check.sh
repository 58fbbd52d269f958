#!/bin/sh
# Runs inside the emulated board at boot (petal-emulate-check.service, from the host's share at
# /mnt/share, which run.sh fills: petal, boards/, this script). The board boots twice:
#   phase 1: what a user does on a fresh board (copy the files, `./install.sh --board BOARD`),
#            then the checks: permissions, boot, screen (a screendump the host compares),
#            no clock and clock jumps, crash (kill -9), stop; then `systemctl reboot`;
#   phase 2: the frame came back by itself after the reboot, with its gallery and retention.
# Lines starting "PETAL-CHECK:" go to the serial console and to results/check.log in the share,
# which run.sh reads. "PASS name: ..." and "FAIL name: ..." are the checks; SCREENDUMP-NOW asks
# the host for a screendump (it answers with the file screendump-done); REBOOT and DONE end a
# phase. Each line opens the console anew: serial-getty's vhangup() on ttyAMA0 at boot cuts off
# a descriptor held from before (the unit's own stdout).
S=/mnt/share
R=$S/results
G=/var/lib/petal/gallery
BOARD=$(cat $S/board 2>/dev/null || echo rpi3)
WAIT=$(cat $S/picture-timeout 2>/dev/null || echo 600)
PHASE=$(cat $S/phase 2>/dev/null || echo 1)
KEEP=3
mkdir -p $R
say() {
    echo "PETAL-CHECK: $*" >>$R/check.log
    echo "PETAL-CHECK: $*" >/dev/ttyAMA0 2>/dev/null
}
# Many lines: each through say.
says() { while IFS= read -r line; do say "$1$line"; done; }
pass() { say "PASS $*"; }
fail() { say "FAIL $*"; }
check() { # check NAME DETAIL CONDITION...
    name=$1 detail=$2
    shift 2
    if "$@"; then pass "$name: $detail"; else fail "$name: $detail"; fi
}
up() { cut -d' ' -f1 /proc/uptime; }
pictures() { find $G -maxdepth 1 -name 'petal-*.png' 2>/dev/null | sort; }
count() { pictures | wc -l; }
# The sequence number of the newest picture (petal-n<seq>-...): the gallery's order.
newest_seq() { pictures | sed -n 's|.*/petal-n0*\([0-9][0-9]*\)-.*|\1|p' | sort -n | tail -n1; }
newest() { pictures | awk -F/ '{ print $NF }' | sort -t- -k2 | tail -n1; }
# Waits until the newest sequence number exceeds $1; prints the seconds it took, fails after
# $2 seconds.
wait_picture_after() {
    t0=$(up)
    i=0
    while [ $i -lt "$2" ]; do
        s=$(newest_seq)
        if [ -n "$s" ] && [ "$s" -gt "$1" ]; then
            awk -v a="$(up)" -v b="$t0" 'BEGIN { printf "%.0f\n", a - b }'
            return 0
        fi
        sleep 1
        i=$((i + 1))
    done
    return 1
}
# expect_picture NAME WHAT: a PASS when a picture newer than the gallery's newest comes within
# $WAIT s (WHAT says after what), else a FAIL.
expect_picture() {
    before_seq=$(newest_seq)
    if took=$(wait_picture_after "${before_seq:-0}" "$WAIT"); then
        pass "$1: a new picture $took s after $2 (sequence ${before_seq:-0} -> $(newest_seq))"
    else
        fail "$1: no new picture within $WAIT s after $2"
        return 1
    fi
}
# Every gallery file a whole PNG (signature first, IEND chunk last) and no temporary file left.
gallery_whole() {
    for f in $(pictures); do
        [ "$(head -c 8 "$f" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || return 1
        [ "$(tail -c 12 "$f" | od -An -tx1 | tr -d ' \n')" = 0000000049454e44ae426082 ] || return 1
    done
    [ -z "$(find $G -maxdepth 1 -name '.petal-*' 2>/dev/null)" ]
}
at_most_keep() { [ "$(count)" -le $KEEP ]; }
retention_ok() { at_most_keep && kept_are_newest; }
# Retention by sequence number: the kept pictures are the newest ones (ignoring the clock).
kept_are_newest() {
    n=$(count)
    s=$(newest_seq)
    [ -n "$s" ] || return 1
    low=$((s - n + 1))
    for f in $(pictures); do
        q=$(basename "$f" | sed -n 's/^petal-n0*\([0-9][0-9]*\)-.*/\1/p')
        [ "$q" -ge "$low" ] || return 1
    done
}
restarted_after() { [ "$(restarts)" -gt "$1" ] && [ "$(systemctl is-active petal)" = active ]; }
stopped_in_time() { awk -v t="$1" 'BEGIN { exit !(t < 15) }' && [ "$2" = success ]; }
main_pid() { systemctl show -p MainPID --value petal; }
restarts() { systemctl show -p NRestarts --value petal; }
finish_phase() {
    journalctl -u petal --no-pager -o short-monotonic >$R/journal-phase$PHASE.txt 2>&1
    pictures | awk -F/ '{ print $NF }' >$R/gallery-phase$PHASE.txt
    mkdir -p $R/gallery-phase$PHASE
    cp $G/petal-*.png $R/gallery-phase$PHASE/ 2>/dev/null
    sync
}

state=$(systemctl is-system-running --wait)
say "phase $PHASE: system $state at uptime $(up) s; clock $(date -u +%Y-%m-%dT%H:%M:%SZ)"
systemd-analyze 2>&1 | head -n 1 | says ""
systemctl --failed --no-legend --no-pager | says "failed unit: "

if [ "$PHASE" = 2 ]; then
    # --- reboot ------------------------------------------------------------------------------
    check reboot "petal active after the reboot without being started by hand ($(systemctl is-active petal), enabled: $(systemctl is-enabled petal))" \
        [ "$(systemctl is-active petal)" = active ]
    before=$(cat $R/gallery-phase1.txt 2>/dev/null)
    now=$(pictures | awk -F/ '{ print $NF }')
    check reboot "the gallery kept its $(echo "$before" | wc -w) pictures across the reboot" [ -n "$before" -a "$before" = "$now" ]
    expect_picture reboot "the check started"
    check reboot "retention: $(count) pictures (keep = $KEEP), the newest by sequence" retention_ok
    finish_phase
    say "DONE phase 2"
    sleep 2
    systemctl poweroff
    exit 0
fi

# --- install, as a user would: the files in a folder, the binary next to install.sh ----------
boot_clock=$(date +%s)
if [ -e /dev/fb0 ]; then
    say "fb0: $(cat /sys/class/graphics/fb0/name) $(cat /sys/class/graphics/fb0/virtual_size) $(cat /sys/class/graphics/fb0/bits_per_pixel) bpp, $(stat -c '%G %a' /dev/fb0)"
fi
# Raspberry Pi OS has spi and gpio groups (the panels' and buttons' devices belong to them);
# Debian has neither, so they are made here and install.sh must put petal in them.
groupadd -f -r spi && groupadd -f -r gpio
rm -rf /root/petal && cp -r $S/boards /root/petal && cp $S/petal /root/petal/petal
cd /root/petal || exit 1
t0=$(up)
./install.sh --board "$BOARD" >$R/install.log 2>&1
rc=$?
check install "install.sh --board $BOARD exit $rc in $(awk -v a="$(up)" -v b="$t0" 'BEGIN { print a - b }') s" [ $rc = 0 ]
says "install: " <$R/install.log
check install "petal.service enabled ($(systemctl is-enabled petal))" [ "$(systemctl is-enabled petal)" = enabled ]

# --- permissions ------------------------------------------------------------------------------
groups=$(id -nG petal 2>/dev/null)
ok=1
for g in video spi gpio; do
    if getent group $g >/dev/null; then
        case " $groups " in *" $g "*) ;; *) ok=0 ;; esac
    elif [ $g = video ]; then
        ok=0
    fi
done
check permissions "petal's groups: $groups (video, spi and gpio, as on Raspberry Pi OS)" [ $ok = 1 ]
check permissions "the petal user opens /dev/fb0 for writing" runuser -u petal -- sh -c ': <>/dev/fb0'

# --- boot: the unit paints on fb0 -------------------------------------------------------------
# Few steps and a short interval so the checks see pictures soon (each picture takes tens of
# seconds under emulation); `emerging = false` so the screen shows the finished picture that
# the gallery keeps; keep = 3 so retention is exercised.
sed -i 's/^every = .*/every = "20s"/; s/^morph = .*/morph = 0/; s/^keep = .*/keep = '$KEEP'/; /^emerging *=/d; /^steps *=/d; /^quiet-hours *=/d' /etc/petal/frame.toml
printf 'emerging = false\nsteps = 3\n' >>/etc/petal/frame.toml
systemctl restart petal
say "petal restarted (every 20s, 3 steps, keep $KEEP) at uptime $(up) s"
if took=$(wait_picture_after 0 "$WAIT"); then
    pass "boot: first picture $took s after the restart: $(newest)"
else
    fail "boot: no picture within $WAIT s"
fi
check boot "petal is active ($(systemctl is-active petal))" [ "$(systemctl is-active petal)" = active ]
pid=$(main_pid)
puser=$(stat -c %U /proc/"$pid")
pgroups=$(sed -n 's/^Groups:\s*//p' /proc/"$pid"/status)
has_gid() { for g in $pgroups; do [ "$g" = "$(getent group "$1" | cut -d: -f3)" ] && return 0; done; return 1; }
service_user_ok() { [ "$puser" = petal ] && has_gid video && has_gid spi && has_gid gpio; }
check permissions "the service runs as $puser with the video, spi and gpio groups (process groups: $pgroups)" service_user_ok
first=$(newest)
check boot "journalctl -u petal shows the picture ($first)" sh -c "journalctl -u petal --no-pager | grep -q 'kept as .*$first'"

# --- screen: the host dumps the emulated display and compares it with the gallery's picture ---
cp "$G/$first" $R/screen-source.png
say "SCREENDUMP-NOW $first"
i=0
while [ ! -e $S/screendump-done ] && [ $i -lt 30 ]; do sleep 1; i=$((i + 1)); done
check screen "the newest picture was still $first when the host took the screendump" [ "$(newest)" = "$first" ]

# --- no clock -----------------------------------------------------------------------------------
# The board booted with its real-time clock at 2001-01-01 (run.sh: -rtc base=...), as a Pi
# without an RTC battery or network does. Then either the clock stays before 2025 and petal
# knows it is not set (quiet hours cannot apply yet), or systemd moves it forward to its own
# build date (as here with Debian's systemd; fake-hwclock on Raspberry Pi OS restores the last
# shutdown's time): a plausible but wrong time that petal cannot tell from a real one, so quiet
# hours follow that wrong time. Either way, quiet hours are set around the board's wrong time
# and the picture loop must follow the clock when NTP corrects it.
host_now=$(cat $S/host-epoch 2>/dev/null || date +%s)
# Minutes of the real (host's) time after the quiet window around $1 opens: the window must
# not hold the real time, or NTP's answer would not end the quiet hours.
into() { echo $(( ( (host_now - ($1 - 300)) % 86400 + 86400 ) % 86400 / 60 )); }
if [ "$(into "$(date +%s)")" -lt 35 ]; then
    # The wrong time of day is too near the real one: make it another wrong time, 12 hours off.
    date -s "@$(( $(date +%s) - 43200 ))" >/dev/null
fi
year=$(date +%Y)
wrong=$(date +%s)
quiet=$(date -d "@$((wrong - 300))" +%H:%M)-$(date -d "@$((wrong + 1800))" +%H:%M)
sed -i '/^quiet-hours *=/d' /etc/petal/frame.toml
echo "quiet-hours = \"$quiet\"" >>/etc/petal/frame.toml
quiet_before=$(journalctl -u petal -o cat --no-pager | grep -c '^petal: quiet hours$')
last=$(newest_seq)
systemctl restart petal
say "clock: the board says $(date -u +%Y-%m-%dT%H:%MZ) (booted at 2001-01-01); quiet hours $quiet around it; the real time $(date -u -d "@$host_now" +%H:%MZ) is outside it"
if [ "$year" -lt 2025 ]; then
    if took=$(wait_picture_after "$last" "$WAIT"); then
        pass "clock: not set ($year), so quiet hours $quiet did not hold the picture back ($took s)"
    else
        fail "clock: not set ($year), yet no picture within $WAIT s (quiet hours $quiet)"
    fi
    check clock "the journal says the clock is not set" sh -c "journalctl -u petal --no-pager | grep -q 'clock is not set'"
else
    sleep 40
    quiet_now=$(journalctl -u petal -o cat --no-pager | grep -c '^petal: quiet hours$')
    check clock "a plausible but wrong clock ($year): quiet hours $quiet hold pictures back (no picture for 40 s; journal: quiet hours)" \
        [ "$(newest_seq)" = "$last" -a "$quiet_now" -gt "$quiet_before" ]
fi
# NTP arrives: the clock jumps to the host's time, then back by two days (a wrong fake-hwclock
# save); the quiet hours end, the loop goes on and retention keeps the newest by sequence number.
for jump in "@$host_now" "-2 days"; do
    last=$(newest_seq)
    if [ "${jump#@}" != "$jump" ]; then date -s "$jump" >/dev/null; else date -s "$(date -d "$jump")" >/dev/null; fi
    if took=$(wait_picture_after "$last" "$WAIT"); then
        pass "clock: after a jump to $(date -u +%Y-%m-%dT%H:%MZ), outside the quiet hours, the next picture came $took s later (sequence $last -> $(newest_seq))"
    else
        fail "clock: no picture within $WAIT s after a jump to $(date -u +%FT%TZ)"
        systemctl status petal --no-pager -n 0 2>&1 | head -n 4 | says "status: "
        journalctl -u petal -o short-monotonic --no-pager -n 25 | says "journal: "
    fi
done
check clock "retention after the jumps: $(count) pictures (keep = $KEEP), the newest by sequence: $(pictures | awk -F/ '{ print $NF }' | tr '\n' ' ')" retention_ok

# The quiet hours were around the board's wrong time, which systemd sets again at the next
# boot: without them the reboot check below sees pictures.
sed -i '/^quiet-hours *=/d' /etc/petal/frame.toml
systemctl restart petal

# --- crash: kill -9, systemd restarts it --------------------------------------------------
pid=$(main_pid)
n0=$(restarts)
kill -9 "$pid"
t0=$(up)
i=0
while [ $i -lt 60 ]; do
    p=$(main_pid)
    [ "$p" != 0 ] && [ "$p" != "$pid" ] && [ "$(systemctl is-active petal)" = active ] && break
    sleep 1
    i=$((i + 1))
done
check crash "after kill -9 of $pid systemd restarted petal as $(main_pid) in $(awk -v a="$(up)" -v b="$t0" 'BEGIN { printf "%.0f", a - b }') s (restarts $n0 -> $(restarts))" restarted_after "$n0"
expect_picture crash "the restart"
check crash "the gallery is whole PNGs, no temporary file left" gallery_whole

# --- stop: systemctl stop ends it within the unit's timeout ------------------------------------
timeout_s=$(systemctl show -p TimeoutStopUSec --value petal)
t0=$(up)
systemctl stop petal
took=$(awk -v a="$(up)" -v b="$t0" 'BEGIN { printf "%.1f", a - b }')
result=$(systemctl show -p Result --value petal)
check stop "systemctl stop took $took s (TimeoutStopSec $timeout_s), result $result" \
    stopped_in_time "$took" "$result"
check stop "every gallery file is a whole PNG, no temporary file left ($(count) pictures)" gallery_whole

finish_phase
say "REBOOT"
sleep 1
systemctl reboot
