# Lodge with lodged.json `direct: true`: the same sandbox, tenant and apps as `lodge`,
# but Apache reaches the app's workers on the app's own socket once lodged has routed
# it, so lodged is out of the byte path (PROTOCOL.md, "Straight to the app").
source "$BENCH/systems/lodge.sh"

lodgedirect_desc() { echo "Apache mpm_event + mod_lodge straight to the app's socket (lodged.json direct), LodgeProcesses 2"; }
lodgedirect_version() { lodge_version; }
lodgedirect_setup() { lodge_setup; }
lodgedirect_teardown() { lodge_teardown; }
lodgedirect_start() { LODGE_SETTINGS='{"direct": true}' lodge_start "$@"; }
lodgedirect_stop() { lodge_stop "$@"; }
lodgedirect_roots() { lodge_roots "$@"; }
lodgedirect_logs() { lodge_logs "$@"; }
