# Phusion Passenger's Node support (Debian's OSS build) in the same Apache, with the
# settings of the `passenger` system (pool 2, both processes started ahead): the node
# hello app, unmodified, as PassengerStartupFile; Passenger's loader catches its
# listen(). Passenger's defaults otherwise (it lets a Node process take many requests
# at once).
source "$BENCH/systems/passenger.sh"

PASSENGER_NODE_LOADER=/usr/share/passenger/helper-scripts/node-loader.js

passengernode_desc() { echo "Apache mpm_event + Phusion Passenger, Node (apps/node/server.js), pool 2, min instances 2, prestarted"; }
passengernode_version() { echo "$(passenger_version | cut -d';' -f1,2); node $(/usr/bin/node --version)"; }
passengernode_apps() { echo node-hello; }

passengernode_setup() {
  [ -e "$PASSENGER_NODE_LOADER" ] || { say "passengernode: $PASSENGER_NODE_LOADER is missing (Debian's passenger)"; return 1; }
}

# passengernode_start RUN PORT APPS
passengernode_start() {
  passenger_conf "$1" "$2" "$3/node" <<CONF
PassengerNodejs /usr/bin/node
PassengerAppType node
PassengerStartupFile server.js
CONF
  apache_start "$1"
}

passengernode_roots() { passenger_roots "$@"; }
passengernode_stop() { passenger_stop "$@"; }
passengernode_logs() { passenger_logs "$@"; }
