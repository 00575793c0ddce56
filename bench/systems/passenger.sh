# Phusion Passenger (Debian's OSS build) in the same Apache: pool of 2 Python
# processes, both started ahead (PreStart + MinInstances), one request at a time each
# (the only mode Passenger OSS has for Python). Defaults otherwise, so Passenger
# buffers each upload body in its core agent (PassengerBufferUpload on).

passenger_desc() { echo "Apache mpm_event + Phusion Passenger, Python WSGI, pool 2, min instances 2, prestarted"; }

passenger_version() {
  echo "$(apache_version); $(passenger-config --version 2>/dev/null | head -1) (deb $(dpkg-query -W -f='${Version}' libapache2-mod-passenger 2>/dev/null)); $(python_version)"
}

# passenger_start RUN PORT APPS
passenger_start() {
  passenger_conf "$1" "$2" "$3/passenger" <<CONF
PassengerAppType wsgi
PassengerStartupFile passenger_wsgi.py
PassengerSpawnMethod direct
CONF
  apache_start "$1"
}

# passenger_conf RUN PORT APP: writes RUN/httpd.conf: Passenger's settings, pool 2,
# prestarted, with the app in the folder APP; the app's own lines on stdin.
passenger_conf() {
  local run=$1 port=$2 app=$3
  local own="$run/passenger"
  # Without user switching the core agent runs as www-data: its registry, buffers
  # and log must be www-data's.
  mkdir -p "$own/registry" "$own/buffers" "$app/public"
  touch "$own/passenger.log"
  chown -R www-data:www-data "$own"
  {
    apache_base_conf "$run" "$port"
    cat <<CONF

LoadModule passenger_module $MODDIR/mod_passenger.so
PassengerRoot /usr/lib/ruby/vendor_ruby/phusion_passenger/locations.ini
PassengerDefaultRuby /usr/bin/ruby
PassengerInstanceRegistryDir "$own/registry"
PassengerDataBufferDir "$own/buffers"
PassengerLogFile "$own/passenger.log"
# no internet here, and nothing to report
PassengerDisableSecurityUpdateCheck on
PassengerDisableAnonymousTelemetry on
PassengerMaxPoolSize 2
PassengerPython $PY
PassengerDefaultUser www-data
PassengerDefaultGroup www-data
PassengerUserSwitching off
PassengerFriendlyErrorPages off
# the watchdog requests this once Apache is up, so the pool fills before the load
PassengerPreStart http://127.0.0.1:$port/

DocumentRoot "$app/public"
<Directory "$app/public">
  Require all granted
  Options -MultiViews
</Directory>
PassengerAppRoot "$app"
PassengerMinInstances 2
CONF
    cat
  } >"$run/httpd.conf"
}

passenger_roots() { cat "$1/httpd.pid" 2>/dev/null; }
passenger_stop() { apache_stop "$1"; }
passenger_logs() { echo "$1/apache-start.out $1/error.log $1/passenger/passenger.log"; }
