#!/bin/sh
# Builds mod_lodge.so with an Apache's apxs, without installing it.
#
#   native/apache/build.sh [APXS [OUTDIR]]
#
# APXS defaults to "apxs". OUTDIR defaults to build/apache24 at the top of
# the repository (build/apache13 when APXS belongs to Apache 1.3). The
# system's Apache and its configuration are left alone. Quiet on success
# except for compiler warnings; on failure it prints the build log.
#
# The module runs lodged by default (LodgeDaemon on) as
#   $LODGE_NODE $LODGE_LODGED --socket <LodgeSocket>
# LODGE_NODE defaults to the node on PATH, LODGE_LODGED to this tree's
# dist/sidecar/src/main.js; a host whose lodged lives elsewhere says so
# with LodgeDaemonCommand.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
apxs=${1:-apxs}

incdir=$("$apxs" -q INCLUDEDIR 2>/dev/null) || {
    echo "build.sh: '$apxs' is not a working apxs (apxs -q INCLUDEDIR failed)" >&2
    exit 1
}
# Only 2.x ships ap_release.h.
if [ -f "$incdir/ap_release.h" ]; then series=24; else series=13; fi
out=${2:-$repo/build/apache$series}

sources="mod_lodge.c lodge_config.c lodge_host_config.c lodge_directive.c lodge_conn.c lodge_daemon.c lodge_daemon_exec.c lodge_environ.c lodge_exchange.c lodge_frame.c lodge_head.c lodge_lease.c lodge_request.c lodge_response.c lodge_run.c lodge_send.c lodge_status.c lodge_dashboard.c lodge_tunnel.c lodge_route.c lodge_walk.c lodge_htaccess.c"

# apxs leaves its objects next to the sources; build in a scratch copy so
# the source tree stays clean.
work=$(mktemp -d "${TMPDIR:-/tmp}/mod_lodge-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$here"/*.c "$here"/*.h "$work"/
log=$work/build.log

if [ "$series" = 24 ]; then
    set -- -Wc,-Wall -Wc,-Wextra
else
    # 1.3's apxs hands -Wc flags to the linker as well; extend CFLAGS instead.
    set -- -S "CFLAGS=$("$apxs" -q CFLAGS) -Wall -Wextra"
fi

# Both apxs pass a -D through one shell, so the quotes are escaped once; a
# path that needs more than that keeps the module's built-in default.
node=${LODGE_NODE:-$(command -v node || true)}
lodged=${LODGE_LODGED:-$repo/dist/sidecar/src/main.js}
for pair in "LODGE_DEFAULT_NODE=$node" "LODGE_DEFAULT_LODGED=$lodged"; do
    name=${pair%%=*}
    value=${pair#*=}
    [ -n "$value" ] || continue
    case $value in
    /*) ;;
    *) echo "build.sh: $name '$value' is not an absolute path; keeping the built-in default" >&2; continue ;;
    esac
    case $value in
    *[!A-Za-z0-9/._+@-]*)
        echo "build.sh: $name '$value' has characters apxs cannot pass on; keeping the built-in default" >&2
        continue ;;
    esac
    set -- "$@" "-D$name=\\\"$value\\\""
done
if (cd "$work" && "$apxs" -c "$@" -o mod_lodge.so $sources) >"$log" 2>&1; then
    :
else
    echo "build.sh: building mod_lodge with $apxs failed:" >&2
    cat "$log" >&2
    exit 1
fi

# 2.x builds through libtool into .libs/; 1.3 writes the .so in place.
if [ -f "$work/.libs/mod_lodge.so" ]; then
    so=$work/.libs/mod_lodge.so
else
    so=$work/mod_lodge.so
fi
[ -f "$so" ] || { echo "build.sh: $apxs produced no mod_lodge.so" >&2; cat "$log" >&2; exit 1; }

grep -i 'warning:' "$log" >&2 || true
mkdir -p "$out"
cp "$so" "$out/mod_lodge.so.tmp"
mv "$out/mod_lodge.so.tmp" "$out/mod_lodge.so"
