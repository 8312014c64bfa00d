#!/usr/bin/env bash
# Installs what repd needs to build and test on Debian 12 (run as root; no input needed).
# The Swift 6 toolchain itself must already be on PATH (it is not a Debian package).
set -euo pipefail
# Every tool a test asks for with require_tool is here (under CI=true a missing one is a failure):
#   libnbd-bin: nbdinfo nbdcopy nbdfuse; python3-libnbd: nbdsh and python3's `import nbd`;
#   qemu-utils: qemu-io qemu-img; fio (with its nbd engine); lvm2: pvcreate vgcreate vgs ...;
#   e2fsprogs: mkfs.ext4 debugfs e2fsck; fuse3: fusermount3; mount: mount umount losetup;
#   util-linux: blockdev setsid; iproute2: ip ss; coreutils: timeout numfmt sha256sum head;
#   diffutils: cmp; qemu-system-x86: qemu-system-x86_64 (two-node-gfs2.sh's guests).
# Only real packages: Debian 12's `nbdfuse` is a name libnbd-bin provides, which dpkg never
# reports installed, so listing it made every run an apt-get update.
packages=(
  libnbd-dev libnbd-bin nbdkit python3 python3-libnbd qemu-utils fio
  lvm2 e2fsprogs fuse3 socat mount util-linux iproute2 coreutils diffutils tmux pkg-config
  qemu-system-x86
  kmod        # modprobe nbd: repd up attaches the block device through the kernel's nbd driver
  binutils    # strip: the static repd copied into the test guests
  qemu-system-common   # qemu-storage-daemon, for Benchmarks/run.sh
  python3-prometheus-client   # the Prometheus parser two-node-metrics.sh reads `repd metrics` with
  resource-agents      # ocf-tester and ocf-shellfuncs: tests/ocf-agent.sh runs the OCF agent scripts/ocf/repd
  libxml2-utils        # xmllint: ocf-tester's (and tests/ocf-agent.sh's) check of the agent's meta-data
  pacemaker-cli-utils  # cibadmin: tests/two-node-crm-fence.sh runs the fence handlers on a CIB file
  openssl tcpdump      # the TLS tests: certificates made with openssl, the link captured with tcpdump
  # (The agent itself needs no pacemaker-cli-utils: it records promotion scores with crm_attribute only where
  # Pacemaker is installed, and goes on without it; tests/ocf-agent.sh puts a stand-in first on PATH.)
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
