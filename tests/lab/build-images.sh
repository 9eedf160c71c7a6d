#!/usr/bin/env bash
# Build the opsplan lab's local Docker images. Nothing is pulled from a registry: every image
# is FROM scratch and carries files from this machine (Debian's busybox-static, Debian's
# rsync and GNU find with the shared libraries ldd lists, the std-only QuestDB stand-in built
# as a static binary). Idempotent: re-running rebuilds from Docker's cache.
#
# Images (each labelled org.opsplan.lab=1):
#   opsplan-lab/questdb        QuestDB stand-in + busybox, port 9000
#   opsplan-lab/rsync          rsync + busybox               also tagged eeacms/rsync
#   opsplan-lab/alpine         busybox + GNU find            also tagged alpine
#   opsplan-lab/openc3-init    busybox + GNU find + mc stand-in (uid 501)
#                                                            also tagged openc3inc/openc3-init
#   opsplan-lab/data-holder    busybox sleeping, /data (openc3-buckets, openc3-minio-1)
#
# The vendor names (eeacms/rsync, alpine, openc3inc/openc3-init) are the plans' default image
# params. They are tagged only when the name is free or already one of ours (label
# org.opsplan.lab=1): a developer's real alpine:latest is never overwritten. Set
# LAB_VENDOR_TAGS=0 to skip them (tests then pass opsplan-lab/* through the plans' params),
# LAB_VENDOR_TAGS=force to overwrite anyway.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
VENDOR_TAGS=${LAB_VENDOR_TAGS:-1}

fail() {
    echo "build-images.sh: $*" >&2
    exit 1
}

command -v docker >/dev/null || fail "missing tool: docker (the Docker CLI and a running engine)"
command -v cargo >/dev/null || fail "missing tool: cargo (Rust toolchain, to build the QuestDB stand-in)"
command -v ldd >/dev/null || fail "missing tool: ldd (libc-bin)"
[ -x /bin/busybox ] || fail "missing /bin/busybox: apt-get install busybox-static"
is_static() {
    local out
    out=$(ldd "$1" 2>&1 || true)
    grep -qE 'statically linked|not a dynamic executable' <<<"$out"
}
is_static /bin/busybox || fail "/bin/busybox is dynamically linked; the images need Debian's busybox-static (apt-get install busybox-static)"
command -v rsync >/dev/null || fail "missing tool: rsync (apt-get install rsync)"
[ -x /usr/bin/find ] && /usr/bin/find --version 2>/dev/null | grep -q GNU || fail "missing GNU find at /usr/bin/find (apt-get install findutils)"
docker info >/dev/null 2>&1 || fail "the Docker engine does not answer (docker info failed)"

# --- the QuestDB stand-in, static ---------------------------------------------------------
target=$(rustc -vV | sed -n 's/^host: //p')
echo "build-images.sh: building questdb-standin (static, $target)"
RUSTFLAGS='-C target-feature=+crt-static' cargo build --quiet --release \
    --manifest-path "$HERE/questdb-standin/Cargo.toml" --target "$target" \
    --target-dir "$HERE/questdb-standin/target"
standin="$HERE/questdb-standin/target/$target/release/questdb-standin"
is_static "$standin" || fail "$standin is not statically linked"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A root filesystem with busybox, passwd/group and /tmp.
base_rootfs() {
    local r=$1
    mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$r/root" "$r/usr/bin" "$r/usr/local/bin"
    cp /bin/busybox "$r/bin/busybox"
    cat >"$r/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
questdb:x:10001:10001:questdb:/var/lib/questdb:/bin/sh
openc3:x:501:501:openc3:/home/openc3:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
    cat >"$r/etc/group" <<'EOF'
root:x:0:
questdb:x:10001:
openc3:x:501:
nogroup:x:65534:
EOF
}

# Copy a dynamically linked program and every library ldd resolves, at the same paths.
add_program() {
    local r=$1 prog=$2 lib
    mkdir -p "$r$(dirname "$prog")"
    cp -L "$prog" "$r$prog"
    for lib in $(ldd "$prog" | grep -o '/[^ ]*'); do
        mkdir -p "$r$(dirname "$lib")"
        cp -L "$lib" "$r$lib"
    done
}

build() {
    local name=$1 ctx="$work/$1"
    local out
    # The legacy builder's deprecation notice is noise; the output is shown on failure only.
    if ! out=$(docker build --quiet --tag "opsplan-lab/$name:latest" "$ctx" 2>&1); then
        echo "$out" >&2
        fail "docker build of opsplan-lab/$name failed (context $ctx)"
    fi
    echo "build-images.sh: built opsplan-lab/$name:latest"
}

vendor_tag() {
    local ours=$1 vendor=$2 label
    [ "$VENDOR_TAGS" = 0 ] && return 0
    if docker image inspect "$vendor" >/dev/null 2>&1; then
        label=$(docker image inspect --format '{{ index .Config.Labels "org.opsplan.lab" }}' "$vendor" 2>/dev/null || true)
        if [ "$label" != 1 ] && [ "$VENDOR_TAGS" != force ]; then
            echo "build-images.sh: NOT tagging $vendor: an image of that name exists and is not the lab's;" \
                "pass $ours through the plan's image param, or set LAB_VENDOR_TAGS=force" >&2
            return 0
        fi
    fi
    docker tag "$ours" "$vendor"
    echo "build-images.sh: tagged $vendor -> $ours"
}

for name in questdb rsync alpine openc3-init data-holder; do
    mkdir -p "$work/$name"
    cp "$HERE/images/$name/Dockerfile" "$work/$name/Dockerfile"
    base_rootfs "$work/$name/rootfs"
done
cp "$standin" "$work/questdb/rootfs/usr/local/bin/questdb-standin"
add_program "$work/rsync/rootfs" "$(command -v rsync)"
add_program "$work/alpine/rootfs" /usr/bin/find
add_program "$work/openc3-init/rootfs" /usr/bin/find
cp "$HERE/images/openc3-init/mc" "$work/openc3-init/rootfs/usr/local/bin/mc"

for name in questdb rsync alpine openc3-init data-holder; do
    build "$name"
done
vendor_tag opsplan-lab/rsync:latest eeacms/rsync:latest
vendor_tag opsplan-lab/alpine:latest alpine:latest
vendor_tag opsplan-lab/openc3-init:latest openc3inc/openc3-init:latest
