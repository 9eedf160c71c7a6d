#!/bin/sh
# The cost of a second, unchanged backup generation with rsync --link-dest (as the cosmos7
# backup runs it: the whole backup location mounted at /backup) against the first, full one.
# Usage: bench/generations.sh [MiB] [files]   (needs Docker and an image with rsync)
set -eu
mib=${1:-64}
files=${2:-64}
image=${RSYNC_IMAGE:-opsplan-lab/rsync}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src" "$work/b"
i=0
while [ "$i" -lt "$files" ]; do
    head -c $((mib * 1024 * 1024 / files)) /dev/urandom > "$work/src/part-$i"
    i=$((i + 1))
done
run() {
    start=$(date +%s.%N)
    docker run --rm -v "$work/src:/data:ro" -v "$work/b:/backup" "$image" rsync -a "$@"
    end=$(date +%s.%N)
    echo "$end - $start" | bc
}
t1=$(run /data/ /backup/g1/)
t2=$(run --link-dest=/backup/g1/ /data/ /backup/g2/)
s1=$(du -sk "$work/b/g1" | cut -f1)
both=$(du -sk "$work/b" | cut -f1)
echo "first generation:  ${s1} KiB in ${t1}s"
echo "second, unchanged: $((both - s1)) KiB in ${t2}s (files hard-linked: $(find "$work/b/g2" -type f -links +1 | wc -l) of $files)"
