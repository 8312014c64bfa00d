#!/usr/bin/env bash
# Installs what repd needs to build and test on Debian 12 (run as root; no input needed).
# The Swift 6 toolchain itself must already be on PATH (it is not a Debian package).
set -euo pipefail
packages=(
  libnbd-dev libnbd-bin nbdkit nbdfuse python3-libnbd qemu-utils fio
  lvm2 e2fsprogs fuse3 socat util-linux iproute2 tmux pkg-config
  kmod        # modprobe nbd: repd up attaches the block device through the kernel's nbd driver
  binutils    # strip: the static repd copied into the test guests
  qemu-system-common   # qemu-storage-daemon, for Benchmarks/run.sh
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v swift >/dev/null; then
  for d in /opt/swift/usr/bin /usr/share/swift/usr/bin; do
    [ -x "$d/swift" ] && export PATH="$d:$PATH"
  done
fi
command -v swift >/dev/null || { echo "error: no Swift toolchain on PATH (Swift 6 needed)" >&2; exit 1; }
