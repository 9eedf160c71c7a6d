#!/usr/bin/env bash
# Builds the two local images the Hoss lab runs (nothing is pulled; both FROM nothing):
#   opsplan-lab/hoss-base   an empty root (passwd with postgres 999, /tmp, /var/run, usr-merged
#                           links); containers mount this machine's /usr read-only, so they run
#                           the machine's PostgreSQL 15, slapd, python3, curl, openssl, bash
#   busybox (tag)           Debian's busybox-static with its applets, as hossadm runs
#                           `docker run ... busybox cp -a ...`; tagged only when the name is
#                           free or already the lab's (label org.opsplan.lab=1)
# Idempotent. Prints nothing but errors.
set -euo pipefail
command -v docker >/dev/null || { echo "images.sh: missing docker" >&2; exit 1; }
[ -x /bin/busybox ] || { echo "images.sh: missing /bin/busybox (apt-get install busybox-static)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! docker image inspect opsplan-lab/hoss-base:latest >/dev/null 2>&1; then
    r=$work/base
    mkdir -p "$r"/{etc,tmp,mnt,var/run,run,root,home,usr,var/lib/postgresql}
    ln -s usr/bin "$r/bin"; ln -s usr/lib "$r/lib"; ln -s usr/lib64 "$r/lib64"; ln -s usr/sbin "$r/sbin"
    chmod 1777 "$r/tmp"
    printf 'root:x:0:0:root:/root:/bin/bash\npostgres:x:999:999:postgres:/var/lib/postgresql:/bin/bash\nopenldap:x:911:911::/var/lib/ldap:/bin/false\n' >"$r/etc/passwd"
    printf 'root:x:0:\npostgres:x:999:\nopenldap:x:911:\n' >"$r/etc/group"
    tar -C "$r" -c . | docker import -c 'LABEL org.opsplan.lab=1' - opsplan-lab/hoss-base:latest >/dev/null
fi
label=none
if docker image inspect busybox:latest >/dev/null 2>&1; then
    label=$(docker image inspect --format '{{ index .Config.Labels "org.opsplan.lab" }}' busybox:latest)
fi
if [ "$label" = none ]; then
    r=$work/busybox
    mkdir -p "$r/bin" "$r/tmp" "$r/etc"
    cp /bin/busybox "$r/bin/busybox"
    for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$r/bin/$a"; done
    printf 'root:x:0:0:root:/root:/bin/sh\n' >"$r/etc/passwd"
    tar -C "$r" -c . | docker import -c 'LABEL org.opsplan.lab=1' -c 'ENV PATH=/bin' - busybox:latest >/dev/null
elif [ "$label" != 1 ]; then
    echo "images.sh: an image busybox:latest exists that is not the lab's; using it as it is" >&2
fi
