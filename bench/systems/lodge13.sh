# Lodge on Apache 1.3: the same sandbox, tenant and apps as `lodge`, with
# `--apache 1.3` (httpd found through $APXS13). 1.3 is prefork only, so its sizing is
# the sandbox's 1.3 defaults, not mpm_event's.
source "$BENCH/systems/lodge.sh"

lodge13_desc() { echo "Apache 1.3 (prefork) + mod_lodge + lodged (lodge sandbox --apache 1.3), LodgeProcesses 2"; }
lodge13_version() { echo "Apache $("$(dirname "$APXS13")/httpd" -v | sed -n 's/^Server version: //p'); $(lodge_version | cut -d';' -f2-)"; }
lodge13_setup() { lodge_setup; }
lodge13_teardown() { lodge_teardown; }
# 1.3 has no HTTP/2: no hello-h2.
lodge13_apps() { echo hello flask stream upload hello-c64; }
lodge13_start() { LODGE_APACHE=1.3 lodge_start "$@"; }
lodge13_stop() { lodge_stop "$@"; }
lodge13_roots() { lodge_roots "$@"; }
lodge13_logs() { lodge_logs "$@"; }
