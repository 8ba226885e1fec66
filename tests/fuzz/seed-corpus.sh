#!/bin/sh
# Seeds tests/fuzz/corpus/<target>/ from proto-fixtures: every *.bin (one
# raw BGP message) and every *.mrt file. Safe to run when there are none.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
fixtures="$root/proto-fixtures"
corpus="$here/corpus"
mkdir -p "$corpus/decode_message" "$corpus/decode_stream" "$corpus/mrt"

bins=0
mrts=0
if [ -d "$fixtures" ]; then
    # decode_message and decode_stream take one context byte first:
    # 0x01 = four_octet_as (what almost every real session negotiates)
    # and 0x00 = 2-octet AS.
    find "$fixtures" -type f -name '*.bin' | while IFS= read -r f; do
        name=$(echo "${f#"$fixtures"/}" | tr '/' '_')
        printf '\000' | cat - "$f" >"$corpus/decode_message/00-$name"
        printf '\001' | cat - "$f" >"$corpus/decode_message/01-$name"
        printf '\000' | cat - "$f" >"$corpus/decode_stream/00-$name"
        printf '\001' | cat - "$f" >"$corpus/decode_stream/01-$name"
        # The mrt target also runs `bgpd decode`, which takes raw messages.
        cp "$f" "$corpus/mrt/$name"
    done
    bins=$(find "$fixtures" -type f -name '*.bin' | wc -l)
    find "$fixtures" -type f -name '*.mrt' | while IFS= read -r f; do
        cp "$f" "$corpus/mrt/$(echo "${f#"$fixtures"/}" | tr '/' '_')"
    done
    mrts=$(find "$fixtures" -type f -name '*.mrt' | wc -l)
fi
# Hand-made seeds (seeds/make-seeds.py) and the regression inputs found
# earlier are always part of the corpus.
for t in decode_message decode_stream mrt; do
    for d in "$here/seeds/$t" "$here/regressions/$t"; do
        if [ -d "$d" ]; then
            find "$d" -type f ! -name '.*' -exec cp {} "$corpus/$t/" \;
        fi
    done
done
echo "seeded from $bins .bin and $mrts .mrt fixtures into $corpus"
