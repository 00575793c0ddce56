# Lodge with lodged.json `direct: false`: the same sandbox, tenant and apps as `lodge`,
# but every request passes through lodged (PROTOCOL.md, "One request, through lodged"),
# as before the apps' own sockets were the default: lodged's hop, measured beside them.
source "$BENCH/systems/lodge.sh"

lodgecarried_desc() { echo "Apache mpm_event + mod_lodge + lodged carrying every request (lodged.json direct false), LodgeProcesses 2"; }
lodgecarried_version() { lodge_version; }
lodgecarried_setup() { lodge_setup; }
lodgecarried_teardown() { lodge_teardown; }
lodgecarried_start() { LODGE_SETTINGS='{"direct": false}' lodge_start "$@"; }
lodgecarried_stop() { lodge_stop "$@"; }
lodgecarried_roots() { lodge_roots "$@"; }
lodgecarried_logs() { lodge_logs "$@"; }
