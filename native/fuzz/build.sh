#!/bin/sh
# Builds the native fuzz targets: libFuzzer binaries with AddressSanitizer
# and UBSan, each linking the mod_lodge sources it fuzzes, unchanged, with
# the fakes of fuzz_stubs.c in place of the rest of httpd and mod_lodge.
#
#   native/fuzz/build.sh [OUTDIR]
#
# OUTDIR defaults to build/fuzz at the top of the repository. Needs clang
# with its fuzzer and sanitizer runtimes (Debian: clang, libclang-rt-14-dev)
# and Apache 2.4's headers (apache2-dev). Quiet on success; exits 2 when
# clang or its fuzzer runtime is missing, so a caller can tell "cannot
# build here" from "does not build".
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${1:-$repo/build/fuzz}
cc=${LODGE_FUZZ_CC:-clang}
# LODGE_FUZZ_SOURCES: another copy of native/apache (to see a target catch a planted bug).
apache=${LODGE_FUZZ_SOURCES:-$repo/native/apache}

command -v "$cc" >/dev/null 2>&1 || { echo "fuzz/build.sh: no $cc" >&2; exit 2; }
command -v apxs >/dev/null 2>&1 || { echo "fuzz/build.sh: no apxs (apache2-dev)" >&2; exit 2; }

# The target of each harness: the mod_lodge sources it calls into.
targets="
fuzz_frame:lodge_frame.c
fuzz_head:lodge_head.c lodge_frame.c
fuzz_directive:lodge_directive.c lodge_config.c lodge_frame.c
"

cflags="-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
 -fno-sanitize-recover=undefined -Wall -Wextra -Wno-unused-parameter
 $(apxs -q EXTRA_CPPFLAGS) -I$apache -I$(apxs -q INCLUDEDIR)
 $(apr-1-config --includes) $(apu-1-config --includes)"
libs="$(apr-1-config --link-ld) $(apu-1-config --link-ld)"

# The fuzzer runtime is a separate package on Debian; say so plainly.
probe=$(mktemp -d "${TMPDIR:-/tmp}/lodge-fuzz.XXXXXX")
trap 'rm -rf "$probe"' EXIT
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return 0; }\n' >"$probe/p.c"
if ! "$cc" -fsanitize=fuzzer,address,undefined -o "$probe/p" "$probe/p.c" >"$probe/log" 2>&1; then
    echo "fuzz/build.sh: $cc cannot link -fsanitize=fuzzer,address,undefined (libclang-rt-14-dev?):" >&2
    cat "$probe/log" >&2
    exit 2
fi

mkdir -p "$out"
echo "$targets" | while read -r line; do
    [ -n "$line" ] || continue
    name=${line%%:*}
    sources=""
    for s in ${line#*:}; do sources="$sources $apache/$s"; done
    # shellcheck disable=SC2086
    if ! "$cc" $cflags -o "$out/$name.tmp" "$here/$name.c" "$here/fuzz_stubs.c" \
            $sources $libs >"$probe/$name.log" 2>&1; then
        echo "fuzz/build.sh: building $name failed:" >&2
        cat "$probe/$name.log" >&2
        # A source that now calls into another file: say what to do about it.
        sed -n "s/.*undefined reference to \`\([^']*\)'.*/\1/p" "$probe/$name.log" | sort -u |
            while read -r sym; do
                echo "fuzz/build.sh: $name needs $sym: fake it in fuzz_stubs.c, or add its source to $name's line in build.sh" >&2
            done
        exit 1
    fi
    grep -i 'warning:' "$probe/$name.log" >&2 || true
    mv "$out/$name.tmp" "$out/$name"
done
