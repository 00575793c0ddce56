"""The ASGI 3 HTTP scope of one request, made from its REQ pairs (the CGI environ that
serve.Worker.environ decodes, latin-1, as for a WSGI app)."""

ASGI = {'version': '3.0', 'spec_version': '2.4'}

# REQ carries the request's headers as CGI names (PROTOCOL.md, "REQ pairs"); these two
# come without the HTTP_ prefix.
_PLAIN_HEADERS = (('CONTENT_TYPE', b'content-type'), ('CONTENT_LENGTH', b'content-length'))

# Header names seen before, CGI name -> ASGI name: a site sends the same few again and again.
_names = {}
NAMES_MAX = 512


def header_name(key):
    name = _names.get(key)
    if name is None:
        # HTTP_ACCEPT_LANGUAGE -> b'accept-language'. Apache has already folded '_' in a
        # name to '-' (or dropped the header), so the way back is unambiguous.
        name = key[5:].lower().replace('_', '-').encode('latin-1')
        if len(_names) >= NAMES_MAX:
            _names.clear()
        _names[key] = name
    return name


def http_version(protocol):
    # 'HTTP/1.1' -> '1.1'; mod_http2 says 'HTTP/2.0', which ASGI calls '2'.
    v = protocol[5:] if protocol.startswith('HTTP/') else '1.1'
    return '2' if v == '2.0' else v


def _port(v, default):
    try:
        return int(v)
    except (TypeError, ValueError):
        return default


def http_scope(env, state):
    """The scope for env; `state` is the lifespan's namespace, of which each request gets
    a shallow copy (ASGI: a request may add to it; the next one does not see that)."""
    headers = []
    for key, value in env.items():
        if key.startswith('HTTP_'):
            headers.append((header_name(key), value.encode('latin-1')))
    for key, name in _PLAIN_HEADERS:
        value = env.get(key)
        if value is not None:
            headers.append((name, value.encode('latin-1')))
    uri = env.get('REQUEST_URI', '')
    q = uri.find('?')
    raw_path = (uri if q < 0 else uri[:q]).encode('latin-1')
    script = env.get('SCRIPT_NAME', '')
    https = env.get('HTTPS', '')
    scheme = 'https' if https.lower() in ('on', '1') else 'http'
    port = _port(env.get('SERVER_PORT'), 443 if scheme == 'https' else 80)
    scope = {
        'type': 'http',
        'asgi': ASGI,
        'http_version': http_version(env.get('SERVER_PROTOCOL', '')),
        'method': env.get('REQUEST_METHOD', 'GET'),
        'scheme': scheme,
        # PATH_INFO is Apache's decoded path as bytes (latin-1 here); ASGI wants the
        # characters, UTF-8 decoded. The app's mount point is root_path, apart, as
        # SCRIPT_NAME is from PATH_INFO (what Starlette's routing expects).
        'path': env.get('PATH_INFO', '').encode('latin-1').decode('utf-8', 'replace'),
        'raw_path': raw_path,
        'query_string': env.get('QUERY_STRING', '').encode('latin-1'),
        'root_path': script.encode('latin-1').decode('utf-8', 'replace'),
        'headers': headers,
        'client': (env['REMOTE_ADDR'], _port(env.get('REMOTE_PORT'), 0)) if 'REMOTE_ADDR' in env else None,
        'server': (env.get('SERVER_ADDR') or env.get('SERVER_NAME', ''), port),
    }
    if state is not None:
        scope['state'] = state.copy()
    return scope
