#!/usr/bin/env bash
# Installs what the emulated board needs on a Debian bookworm host (root or sudo):
# qemu-system-aarch64, qemu-user-static (stage 2 of the image in a chroot, where binfmt_misc
# allows it), debootstrap, socat (the QEMU monitor), kmod (depmod), cpio, e2fsprogs, file.
#
# qemu-system-arm comes from bookworm-backports when the host's qemu-utils does (this project's
# machines have qemu-utils 10.0 from backports, which bookworm's qemu-system-common 7.2 cannot
# be installed beside). The backports source is used for this one install only (apt's
# SourceParts pointed at a temporary folder): nothing is added to /etc/apt.
set -euo pipefail
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
want=(qemu-user-static debootstrap socat kmod cpio e2fsprogs file)
missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v qemu-system-aarch64 >/dev/null; then
    utils=$(dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null || true)
    if [[ $utils == *bpo12* ]]; then
        parts=$(mktemp -d)
        trap 'rm -rf "$parts"' EXIT
        # The usual sources too: an update without them would drop their package lists.
        cp /etc/apt/sources.list.d/*.sources "$parts/" 2>/dev/null || true
        cat >"$parts/petal-bookworm-backports.sources" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
        apt_src=(-o "Dir::Etc::SourceParts=$parts")
        $sudo apt-get update -qq "${apt_src[@]}"
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
            "${apt_src[@]}" -t bookworm-backports qemu-system-arm >/dev/null
    else
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends qemu-system-arm >/dev/null
    fi
fi
qemu-system-aarch64 --version | head -n1
