# mod_wsgi daemon mode, the reference: every ratio in the report is to this column.
# Two daemon processes of one thread each; the entry is preloaded in the daemons
# (process-group and application-group given on WSGIScriptAlias); nothing runs
# embedded in Apache's own children.

modwsgi_desc() { echo "Apache mpm_event + mod_wsgi daemon mode, processes=2 threads=1 (reference)"; }

modwsgi_version() {
  echo "$(apache_version); mod_wsgi $(dpkg-query -W -f='${Version}' libapache2-mod-wsgi-py3 2>/dev/null); $(python_version)"
}

# modwsgi_start RUN PORT APPS
modwsgi_start() {
  local run=$1 port=$2 apps=$3
  apache_app_conf "$run" "$port" "$apps" <<CONF
LoadModule wsgi_module $MODDIR/mod_wsgi.so
WSGISocketPrefix "$run/wsgi"
WSGIRestrictEmbedded On
WSGIDaemonProcess bench processes=2 threads=1 python-path=$apps display-name=%{GROUP}
WSGIScriptAlias / "$apps/wsgi_entry.py" process-group=bench application-group=%{GLOBAL}
CONF
  apache_start "$run"
}

modwsgi_roots() { cat "$1/httpd.pid" 2>/dev/null; }
modwsgi_stop() { apache_stop "$1"; }
modwsgi_logs() { echo "$1/apache-start.out $1/error.log"; }
