#!/usr/bin/env bash
# Installs a built repd, its Pacemaker resource agent and its systemd unit (run as root).
#
#   bash scripts/install.sh [--prefix DIR] [--destdir DIR] [--systemd] [REPD_BINARY]
#
#   REPD_BINARY    the repd to install (default: .build/release/repd of this checkout)
#   --prefix DIR   repd goes to DIR/sbin/repd (default /usr/local); the agent's and the unit's
#                  default path of repd follow it
#   --destdir DIR  install under the staging root DIR (also DESTDIR=DIR), e.g. for a package
#                  or a test; nothing outside DIR is touched
#   --systemd      install the unit even where DESTDIR/etc/systemd/system does not exist yet
#
# What goes where (each directory is created):
#   DESTDIR/PREFIX/sbin/repd                       the binary
#   DESTDIR/usr/lib/ocf/resource.d/repd/repd       ocf:repd:repd (scripts/ocf/repd)
#   DESTDIR/usr/lib/repd/repd-crm-fence-peer       the Pacemaker fence-peer handler, and
#   DESTDIR/usr/lib/repd/repd-crm-unfence-peer     its after-resync-target half (a link to it)
#   DESTDIR/etc/systemd/system/repd@.service       only if that directory exists (a systemd
#                                                  system) or with --systemd
# Running it again installs the same files again (idempotent). Docs/Operations.md.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prefix=/usr/local
destdir=${DESTDIR:-}
systemd=auto
binary=""
while [ "$#" -gt 0 ]; do
    case "$1" in
        --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
        --prefix=*) prefix=${1#*=}; shift ;;
        --destdir) destdir=${2:?--destdir needs a directory}; shift 2 ;;
        --destdir=*) destdir=${1#*=}; shift ;;
        --systemd) systemd=yes; shift ;;
        -h|--help) sed -n '2,19s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
        -*) echo "install.sh: unknown option $1 (see --help)" >&2; exit 64 ;;
        *) [ -z "$binary" ] || { echo "install.sh: one binary only" >&2; exit 64; }
           binary=$1; shift ;;
    esac
done
binary=${binary:-$top/.build/release/repd}
case "$prefix" in /*) ;; *) echo "install.sh: --prefix must be an absolute path" >&2; exit 64 ;; esac
prefix=${prefix%/}
destdir=${destdir%/}

[ -x "$binary" ] || {
    echo "install.sh: no repd binary at $binary; build it (swift build -c release) or name it" >&2
    exit 1
}

sbin="$prefix/sbin/repd"
ocf_dir=/usr/lib/ocf/resource.d/repd
unit_dir=/etc/systemd/system

# install_file MODE SOURCE TARGET: copies SOURCE to DESTDIR/TARGET, creating its directory, with
# the default path of repd (/usr/local/sbin/repd) replaced by this prefix's.
install_file() {
    local mode=$1 src=$2 target="$destdir$3" tmp
    mkdir -p "$(dirname "$target")"
    tmp=$(mktemp "$target.XXXXXX")
    if [ "$sbin" = /usr/local/sbin/repd ]; then
        cat "$src" >"$tmp"
    else
        sed "s|/usr/local/sbin/repd|$sbin|g" "$src" >"$tmp"
    fi
    chmod "$mode" "$tmp"
    mv -f "$tmp" "$target"
    echo "installed $target"
}

mkdir -p "$destdir$prefix/sbin"
if [ "$(readlink -f "$binary")" != "$(readlink -f "$destdir$sbin" 2>/dev/null || true)" ]; then
    # Through a temporary name, so that a running repd's executable is replaced, not rewritten.
    tmp=$(mktemp "$destdir$sbin.XXXXXX")
    cp "$binary" "$tmp"
    chmod 0755 "$tmp"
    mv -f "$tmp" "$destdir$sbin"
fi
echo "installed $destdir$sbin"

install_file 0755 "$top/scripts/ocf/repd" "$ocf_dir/repd"
# The Pacemaker fence handlers (not agents: outside the OCF directory, as DRBD's crm-fence-peer).
install_file 0755 "$top/scripts/ocf/repd-crm-fence-peer" /usr/lib/repd/repd-crm-fence-peer
ln -sfn repd-crm-fence-peer "$destdir/usr/lib/repd/repd-crm-unfence-peer"
echo "installed $destdir/usr/lib/repd/repd-crm-unfence-peer"

if [ "$systemd" = yes ] || [ -d "$destdir$unit_dir" ]; then
    install_file 0644 "$top/scripts/systemd/repd@.service" "$unit_dir/repd@.service"
    if [ -z "$destdir" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        systemctl daemon-reload || true
    fi
else
    echo "skipped repd@.service: no $destdir$unit_dir (not a systemd system; --systemd installs it anyway)"
fi
