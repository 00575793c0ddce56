"""Loading the tenant's app (its own modules always from source), the files lodged
watches, and the tenant-facing account of an exception: a traceback for the log, one
line for the error page."""

import os
import sys

from . import process
from .constants import WATCHED_FILES_MAX

# This package and the entry script: their frames are left out of the tenant's tracebacks.
_OWN_DIRS = (os.path.dirname(os.path.abspath(__file__)),
             os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def print_exception(e):
    """The traceback for the tenant's log, without the runtime's frames: they are the
    same in every traceback and only hide where the tenant's code went wrong."""
    import traceback
    try:
        te = traceback.TracebackException.from_exception(e)
        te.stack = traceback.StackSummary.from_list(
            [f for f in te.stack if os.path.dirname(f.filename) not in _OWN_DIRS])
        f = process._errlog or sys.stderr
        f.write(''.join(te.format()))
        f.flush()
    except Exception:
        pass   # the log itself failed (disk full, say): there is nowhere left to report


def describe(e, root, entry):
    """'app.py line 3: ModuleNotFoundError: No module named 'nope'': the innermost line of
    the tenant's own code, paths relative to the app's root."""
    import traceback
    file = line = None
    if isinstance(e, SyntaxError) and e.filename:
        file, line = e.filename, e.lineno
        text = e.msg
    else:
        frames = traceback.extract_tb(e.__traceback__)
        for fr in reversed(frames):
            if fr.filename.startswith(root):
                file, line = fr.filename, fr.lineno
                break
        text = str(e)
    if file and file.startswith(root):
        file = file[len(root):]
    else:
        # Not the tenant's file (the standard library, a system package): name the entry.
        file, line = entry, None
    where = '%s line %s' % (file, line) if line else file
    text = text.strip().splitlines()[0] if text and text.strip() else ''
    name = type(e).__name__
    if len(text) > 300:
        text = text[:300] + '...'
    return '%s: %s: %s' % (where, name, text) if text else '%s: %s' % (where, name)


def source_only_imports(root):
    # Python trusts a cached .pyc whose source has the same size and the same mtime in
    # whole seconds; a tenant's quick one-character fix (same size, same second) would
    # then reload the old code. The app's own modules are therefore always compiled
    # from source; everything else (stdlib, Debian's packages) keeps its caches.
    import importlib.machinery as machinery

    class SourceLoader(machinery.SourceFileLoader):
        def get_code(self, fullname):
            return self.source_to_code(self.get_data(self.path), self.path)

    prefix = root.rstrip('/')

    def hook(path):
        p = os.path.abspath(path or '.')
        if p != prefix and not p.startswith(prefix + '/'):
            raise ImportError('not in the app tree')
        return machinery.FileFinder(p, (SourceLoader, machinery.SOURCE_SUFFIXES))

    sys.path_hooks.insert(0, hook)
    sys.path_importer_cache.clear()
    return SourceLoader


def load_app(root, entry, name, kind='wsgi'):
    import importlib.util
    SourceLoader = source_only_imports(root)
    path = os.path.join(root, entry)
    stem = os.path.splitext(os.path.basename(entry))[0]
    # The module is registered under its file's stem, so `from app import db` elsewhere
    # finds this module instead of importing the file a second time.
    modname = stem if stem and stem not in sys.modules else '_lodge_app'
    if not os.path.isfile(path):
        return None, '%s: no such file in the app directory' % entry
    loader = SourceLoader(modname, path)
    spec = importlib.util.spec_from_file_location(modname, path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    try:
        loader.exec_module(module)
    except BaseException:
        sys.modules.pop(modname, None)
        raise
    # WSGI's convention is `application`, ASGI's (FastAPI, Starlette) `app`.
    names = [name] if name else ['app', 'application'] if kind == 'asgi' else ['application', 'app']
    for n in names:
        app = getattr(module, n, None)
        if app is not None:
            break
    else:
        if name:
            return None, '%s: no callable named %r' % (entry, name)
        return None, ("%s: defines neither %r nor %r "
                      "(name the callable: LodgeApp %s %s:NAME)" % (entry, names[0], names[1], kind, entry))
    if not callable(app):
        return None, '%s: %r is of type %s, not a %s callable' % (entry, n, type(app).__name__, kind.upper())
    return app, None


def own_modules(root, limit=WATCHED_FILES_MAX):
    # lodged watches these files for edits: the code the app imported from its own
    # tree (not the standard library, not Debian's packages).
    out = []
    prefix = root.rstrip('/') + '/'
    for m in list(sys.modules.values()):
        f = getattr(m, '__file__', None)
        if isinstance(f, str) and f.startswith(prefix) and len(out) < limit * 2:
            out += (b'file', os.fsencode(f))
    return out
