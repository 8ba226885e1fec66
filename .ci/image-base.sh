#!/usr/bin/env bash
# The container image's base, made here rather than pulled (no image
# registry is reachable from these machines): a minimal Debian 12 by
# debootstrap --variant=minbase from the same Debian mirror apt uses, with
# iproute2 and procps (what the image would otherwise apt-get install: its
# build runs without a network), imported into podman as
# localhost/debian:bookworm. Made once: later runs (CI's image build and
# the containerised seed lab, and the next CI run on this machine) find
# the image with this recipe's label and skip debootstrap.
#
#   bash .ci/image-base.sh            # prints the image name
#   BASE_IMAGE_REBUILD=1 bash ...     # debootstrap again
set -euo pipefail
image=${BASE_IMAGE:-localhost/debian:bookworm}
podman=(podman --runtime runc --cgroup-manager=cgroupfs)

include=iproute2,procps
recipe="minbase+$include"
if [ -z "${BASE_IMAGE_REBUILD:-}" ] && "${podman[@]}" image exists "$image" \
    && [ "$("${podman[@]}" image inspect --format '{{ index .Labels "bgpd.base.recipe" }}' "$image")" = "$recipe" ]; then
    echo "image-base: $image is there (recipe $recipe); no debootstrap" >&2
    echo "$image"
    exit 0
fi
for t in podman runc debootstrap; do
    command -v "$t" >/dev/null || { echo "image-base: $t is missing (apt-get install podman runc debootstrap)" >&2; exit 1; }
done
# The mirror apt itself reaches for bookworm (e.g. http://deb.debian.org/debian).
mirror=${DEBIAN_MIRROR:-$(apt-get indextargets --format '$(SITE) $(RELEASE)' 2>/dev/null \
    | awk '$2 == "bookworm" { print $1; exit }')}
[ -n "$mirror" ] || { echo "image-base: no bookworm mirror in apt's sources (set DEBIAN_MIRROR)" >&2; exit 1; }
dir=$(mktemp -d /var/tmp/bgpd-debootstrap.XXXXXX)
trap 'rm -rf "$dir"' EXIT
echo "image-base: debootstrap --variant=minbase --include=$include bookworm from $mirror" >&2
t0=$SECONDS
debootstrap --variant=minbase --include="$include" bookworm "$dir" "$mirror" >"$dir.log" 2>&1 \
    || { tail -20 "$dir.log" >&2; rm -f "$dir.log"; exit 1; }
rm -f "$dir.log"
# apt in the image uses the same mirror; no caches or lists in the image.
rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
tar -C "$dir" -c . | "${podman[@]}" import --change "LABEL bgpd.base.recipe=$recipe" \
    --change 'CMD ["/bin/bash"]' - "$image" >/dev/null
echo "image-base: $image made in $((SECONDS - t0))s" >&2
echo "$image"
