#!/bin/sh
# Runs inside the emulated board at boot (petal-emulate-check.service, from the host's share at
# /mnt/share, which run.sh fills: petal, boards/, this script). It does what a user does on a
# fresh board: copies the files, runs `./install.sh --board BOARD`, then shortens the picture
# interval, and checks that the service paints. Lines starting "PETAL-CHECK:" go to the serial
# console and to results/check.log in the share, which run.sh reads; SCREENDUMP-NOW asks the host
# for a screendump, DONE ends the run. Each line opens the console anew: serial-getty's
# vhangup() on ttyAMA0 at boot cuts off a descriptor held from before (the unit's own stdout).
S=/mnt/share
R=$S/results
BOARD=$(cat $S/board 2>/dev/null || echo rpi3)
WAIT=$(cat $S/picture-timeout 2>/dev/null || echo 900)
mkdir -p $R
say() {
    echo "PETAL-CHECK: $*" >>$R/check.log
    echo "PETAL-CHECK: $*" >/dev/ttyAMA0 2>/dev/null
}
# Many lines: each through say.
says() { while IFS= read -r line; do say "$1$line"; done; }
up() { cut -d' ' -f1 /proc/uptime; }

state=$(systemctl is-system-running --wait)
say "system $state at uptime $(up) s"
systemd-analyze 2>&1 | head -n 2 | says ""
systemctl --failed --no-legend --no-pager | says "failed unit: "
if [ -e /dev/fb0 ]; then
    say "fb0: $(cat /sys/class/graphics/fb0/name) $(cat /sys/class/graphics/fb0/virtual_size) $(cat /sys/class/graphics/fb0/bits_per_pixel) bpp, $(stat -c '%G %a' /dev/fb0)"
else
    say "no /dev/fb0"
fi

# As a user would: the files in a folder, the binary next to install.sh as ./petal.
rm -rf /root/petal && cp -r $S/boards /root/petal && cp $S/petal /root/petal/petal
cd /root/petal || exit 1
t0=$(up)
./install.sh --board "$BOARD" >$R/install.log 2>&1
rc=$?
say "install.sh exit $rc in $(awk -v a="$(up)" -v b="$t0" 'BEGIN { print a - b }') s (uptime $(up) s)"
says "install: " <$R/install.log
# A short interval and no in-between pictures, so the check sees pictures soon. Painting takes
# longer than 30 s here, so the next picture starts at once; without `emerging = false` the
# screen would show its first (noisy) steps instead of the finished picture the host dumps.
sed -i 's/^every = .*/every = "30s"/; s/^morph = .*/morph = 0/; /^emerging *=/d' /etc/petal/frame.toml
echo 'emerging = false' >>/etc/petal/frame.toml
systemctl restart petal
t1=$(up)
say "petal restarted with every=30s at uptime $t1 s; waiting for pictures (up to $WAIT s)"

n=0
i=0
while [ $i -lt "$WAIT" ]; do
    n=$(find /var/lib/petal/gallery -name '*.png' 2>/dev/null | wc -l)
    if [ "$n" -ge 1 ] && [ -z "${first:-}" ]; then
        first=$(up)
        say "first picture at uptime $first s ($(ls /var/lib/petal/gallery))"
        say "is-active: $(systemctl is-active petal)"
        sleep 2
        say SCREENDUMP-NOW
    fi
    [ "$n" -ge 2 ] && break
    sleep 1
    i=$((i + 1))
done
say "pictures: $n at uptime $(up) s; is-active: $(systemctl is-active petal)"
journalctl -u petal --no-pager -o short-monotonic >$R/journal.txt 2>&1
tail -n 25 $R/journal.txt | says "journal: "
cp /etc/petal/frame.toml /etc/default/petal $R/ 2>/dev/null
ls -l /var/lib/petal/gallery >$R/gallery.txt 2>&1
cp /var/lib/petal/gallery/*.png $R/ 2>/dev/null
sync
say "DONE pictures=$n"
sleep 2
systemctl poweroff
