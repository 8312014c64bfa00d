#!/usr/bin/env bash
# Host side of tests/guests-ctdb.sh: builds the file-service addition to the guests' image, a
# tarball the guest unpacks over its root: Samba (smbd with clustering), CTDB, smbclient and
# tdb-tools and ethtool (CTDB checks the public interface's link with it) from Debian 12, plus iproute2's `ip` and `ss` (CTDB's event scripts need more than
# busybox's). Nothing is installed on the host (a postinst would start services): the .debs are
# downloaded with their dependencies and extracted into a private tree, and the host's copies of
# the shared libraries the tree still needs (ldd) are added to it.
#
# Usage: build-samba-root.sh WORKDIR        (prints the tarball's path; cached in WORKDIR)
set -euo pipefail
W=${1:?usage: build-samba-root.sh WORKDIR}
OUT="$W/samba-root.tar.gz"
BASE="$W/initramfs-root"
PKGS=(samba ctdb smbclient tdb-tools ethtool)
STAMP="$W/samba-root.stamp"
want="v1 ${PKGS[*]}"
if [ -s "$OUT" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; then echo "$OUT"; exit 0; fi
[ -d "$BASE" ] || { echo "build-samba-root.sh: no $BASE (build the harness's initramfs first)" >&2; exit 1; }

DEBS="$W/samba-debs"
mkdir -p "$DEBS/partial"
timeout 600 apt-get install -y -q -d --reinstall --no-install-recommends \
    -o Dir::Cache::archives="$DEBS" -o DPkg::Lock::Timeout=300 "${PKGS[@]}" >"$W/samba-debs.log" 2>&1 ||
    { tail -5 "$W/samba-debs.log" >&2; echo "build-samba-root.sh: apt-get download of ${PKGS[*]} failed" >&2; exit 1; }

R="$W/samba-root"
rm -rf "$R"; mkdir -p "$R"
for d in "$DEBS"/*.deb; do
    case "$(basename "$d")" in python3-*|sudo_*) continue;; esac   # samba-tool's Python, not needed
    dpkg-deb -x "$d" "$R"
done
rm -rf "$R/usr/share/doc" "$R/usr/share/man" "$R/usr/share/locale" "$R/lib/systemd" "$R/usr/lib/systemd" \
       "$R/etc/init.d" "$R/usr/lib/python3" "$R/usr/libexec/ctdb/ctdb_mutex_ceph_rados_helper" \
       "$R/usr/libexec/ctdb/ctdb_etcd_lock"
mkdir -p "$R/sbin"
cp /bin/ip "$R/sbin/ip"; cp /bin/ss "$R/sbin/ss"

# The host libraries the tree's programs and modules need that neither the tree nor the base image has.
libpath="$R/usr/lib/x86_64-linux-gnu:$R/usr/lib/x86_64-linux-gnu/samba:$R/lib/x86_64-linux-gnu"
missing=0
while IFS= read -r -d '' f; do
    [ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ] || continue
    while read -r lib; do
        case "$lib" in
            "$R"/*) ;;
            /*) [ -e "$BASE$lib" ] || [ -e "$BASE/lib/x86_64-linux-gnu/$(basename "$lib")" ] ||
                    [ -e "$R/lib/x86_64-linux-gnu/$(basename "$lib")" ] ||
                    { mkdir -p "$R/lib/x86_64-linux-gnu"; cp -L "$lib" "$R/lib/x86_64-linux-gnu/"; } ;;
            *) echo "build-samba-root.sh: $f: $lib" >&2; missing=1 ;;
        esac
    done < <(LD_LIBRARY_PATH=$libpath ldd "$f" 2>/dev/null | awk '/not found/{print $1 " not found"; next} {for(i=1;i<=NF;i++) if ($i ~ /^\//) print $i}' | grep -v '^/lib64/ld-linux' || true)
done < <(find "$R" -type f \( -perm -u+x -o -name '*.so*' \) -print0)
[ "$missing" = 0 ] || { echo "build-samba-root.sh: shared libraries not found (above)" >&2; exit 1; }

(cd "$R" && tar -czf "$OUT.tmp" .)
mv "$OUT.tmp" "$OUT"
echo "$want" > "$STAMP"
echo "$OUT"
