#!/usr/bin/env bash
# Installs petal on a board as a kiosk service: the binary, a system user in the `video` group,
# /etc/petal/frame.toml (kept if it exists), /etc/petal/http-token (the control page's token,
# made once, mode 0600, printed once), /etc/default/petal (the board profile) and the systemd
# unit, then starts it.
#
#   sudo ./install.sh                       # ./petal next to this script, board detected
#   sudo ./install.sh --board rpi4 --binary target/boards/rpi4/petal
#   sudo ./install.sh --no-start            # install, enable, but do not start now
#   ./install.sh --root /tmp/stage --board rpi4 --binary petal   # stage files only (no root,
#                                           # no user, no systemctl): for packaging and tests
#   sudo ./install.sh --uninstall           # stop and remove the service and the binary
#                                           # (keeps /etc/petal and /var/lib/petal)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)

die() {
    echo "install.sh: $*" >&2
    exit 1
}
say() { echo "install.sh: $*"; }

board="" binary="" root="" start=1 uninstall=0
while [ $# -gt 0 ]; do
    case $1 in
        --board) [ $# -ge 2 ] || die "--board needs a name"; board=$2; shift 2 ;;
        --binary) [ $# -ge 2 ] || die "--binary needs a path"; binary=$2; shift 2 ;;
        --root) [ $# -ge 2 ] || die "--root needs a directory"; root=$2; shift 2 ;;
        --no-start) start=0; shift ;;
        --uninstall) uninstall=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done

staging=0
if [ -n "$root" ]; then
    staging=1
    mkdir -p "$root"
    root=$(cd "$root" && pwd)
elif [ "$(id -u)" != 0 ]; then
    die "run as root (sudo $0 ...), or use --root DIR to stage the files"
fi

BIN=$root/usr/local/bin/petal
UNIT=$root/etc/systemd/system/petal.service
CONFIG=$root/etc/petal/frame.toml
TOKEN=$root/etc/petal/http-token
DEFAULTS=$root/etc/default/petal

if [ "$uninstall" = 1 ]; then
    if [ "$staging" = 0 ]; then
        systemctl disable --now petal.service 2>/dev/null || true
    fi
    rm -f "$UNIT" "$BIN"
    [ "$staging" = 0 ] && systemctl daemon-reload
    say "removed the service and $BIN; kept /etc/petal, /etc/default/petal, /var/lib/petal and the petal user"
    exit 0
fi

# Which board: the flag, else the device tree's model string, else the machine type.
detect_board() {
    local model=""
    [ -r /proc/device-tree/model ] && model=$(tr -d '\0' </proc/device-tree/model)
    case $model in
        *"Raspberry Pi 5"* | *"Raspberry Pi Compute Module 5"* | *"Raspberry Pi 500"*) echo rpi5 ;;
        *"Raspberry Pi 4"* | *"Raspberry Pi Compute Module 4"* | *"Raspberry Pi 400"*) echo rpi4 ;;
        *"Raspberry Pi Zero 2"*) echo rpi-zero2w ;;
        *"Raspberry Pi 3"*) echo rpi3 ;;
        *"Raspberry Pi Zero"*) echo rpi-zero ;;
        *"Raspberry Pi Model"* | *"Raspberry Pi Compute Module Rev"*) echo rpi1 ;;
        *"Orin Nano"*) echo jetson-orin-nano ;;
        *"Jetson Nano"* | *"jetson-nano"*) echo jetson-nano ;;
        *)
            case $(uname -m) in
                x86_64) echo x86_64 ;;
                *) echo "" ;;
            esac ;;
    esac
}
if [ -z "$board" ] && [ "$staging" = 0 ]; then
    board=$(detect_board)
    [ -n "$board" ] && say "detected board: $board"
fi

# The binary: the flag, else ./petal next to this script, else a build-helper output.
if [ -z "$binary" ]; then
    for cand in "$HERE/petal" "$HERE/../target/boards/$board/petal"; do
        if [ -f "$cand" ]; then binary=$cand; break; fi
    done
fi
[ -n "$binary" ] && [ -f "$binary" ] || die "no petal binary: pass --binary PATH (see boards/README.md)"

if [ "$staging" = 0 ]; then
    # Catches the wrong architecture ("Exec format error") or a glibc too old for this build
    # before anything is installed.
    if ! version=$("$binary" --version 2>&1); then
        die "$binary does not run on this machine ($(uname -m)): $version
  (64-bit OS: the aarch64 build; Jetson Nano / old OS: the aarch64 musl build; 32-bit Pi OS: armv7)"
    fi
    say "binary: $version"
    if [ -n "$board" ] && ! "$binary" boards "$board" >/dev/null 2>&1; then
        die "$binary does not know board '$board' (see: $binary boards)"
    fi
fi

install -d -m 0755 "$(dirname "$BIN")" "$(dirname "$UNIT")" "$(dirname "$CONFIG")" "$(dirname "$DEFAULTS")"
install -m 0755 "$binary" "$BIN"
install -m 0644 "$HERE/petal.service" "$UNIT"
say "installed $BIN and $UNIT"

if [ -f "$CONFIG" ]; then
    say "kept the existing $CONFIG"
else
    display=""
    if [ -n "$board" ] && [ -f "$HERE/$board.toml" ]; then
        display=$(sed -n 's/^display *= *"\(.*\)".*/\1/p' "$HERE/$board.toml" | head -n1)
    fi
    if [ -n "$display" ]; then
        sed "s|^display = .*|display = \"$display\"|" "$HERE/examples/frame.toml" >"$CONFIG"
    else
        cp "$HERE/examples/frame.toml" "$CONFIG"
    fi
    chmod 0644 "$CONFIG"
    say "wrote $CONFIG${display:+ (display $display)}: edit it to taste"
fi

# The control page (`http = ...` in frame.toml) needs this token for a LAN address. Made here,
# once, readable by its owner only; shown once.
if [ -f "$TOKEN" ]; then
    say "kept the existing $TOKEN"
else
    (umask 077 && head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$TOKEN")
    chmod 0600 "$TOKEN"
    say "control page token (kept in $TOKEN, shown only now): $(cat "$TOKEN")"
fi

if [ -f "$DEFAULTS" ]; then
    say "kept the existing $DEFAULTS"
else
    {
        echo "# Global options for the petal service (see: petal --help, petal boards)."
        if [ -n "$board" ]; then
            echo "PETAL_OPTS=\"--board $board\""
        else
            echo "PETAL_OPTS=\"\""
        fi
    } >"$DEFAULTS"
    say "wrote $DEFAULTS${board:+ (board $board)}"
fi

if [ "$staging" = 1 ]; then
    say "staged under $root (no user created, systemd not touched)"
    exit 0
fi

if ! id -u petal >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/petal --no-create-home --shell /usr/sbin/nologin \
        --user-group petal
    say "created system user petal"
fi
getent group video >/dev/null || groupadd --system video
usermod -a -G video petal
# SPI panels and buttons: Raspberry Pi OS gives /dev/spidev* to `spi` and /dev/gpiochip* to
# `gpio`. Only groups that exist (systemd gives the user's groups to the service).
for group in spi gpio; do
    if getent group "$group" >/dev/null; then
        usermod -a -G "$group" petal
    fi
done

# The control page saves settings into frame.toml: petal writes a temporary file next to it
# and renames it over, so it needs the directory; it reads its token.
chown root:petal "$(dirname "$CONFIG")"
chmod 0775 "$(dirname "$CONFIG")"
chown petal:petal "$CONFIG" "$TOKEN"

systemctl daemon-reload
if [ "$start" = 1 ]; then
    systemctl enable --now petal.service
    sleep 2
    systemctl --no-pager --lines=5 status petal.service || true
    say "running; log: journalctl -u petal -f"
else
    systemctl enable petal.service
    say "enabled; start with: sudo systemctl start petal"
fi
