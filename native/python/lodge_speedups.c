/*
 * _lodge_speedups: the Python worker's per-request parsing in C, for the
 * interpreter it was built against (its file name carries that interpreter's
 * extension suffix, so no other one imports it). The runtime's Python code
 * does the same where this module is missing (serve.py, environ).
 *
 *   environ(base, pairs) -> dict
 *
 * A copy of `base` with each REQ pair of `pairs` (PROTOCOL.md, "REQ pairs":
 * u16 name length, name, u32 value length, value; big-endian) set in it, both
 * decoded as latin-1, a later pair of the same name replacing an earlier one.
 * ValueError when a pair runs past the end. The REQ comes from mod_lodge, but
 * every length is checked against what is there all the same.
 *
 * Why C: the Python loop over some two dozen pairs was 11 us of a hello
 * request's ~60 in the worker (docs/hot-path.md). Keeping the last REQ's
 * strings by place (below) took 3-4 us more off the loop's ~25
 * (bench/lib/worker-loop.py).
 *
 *   SlotWriter(...)
 *
 * The worker's scoreboard slot, written from C: lodge_board.c.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static int get_u16(const unsigned char *p)
{
    return (p[0] << 8) | p[1];
}

static Py_ssize_t get_u32(const unsigned char *p)
{
    return (Py_ssize_t)(((size_t)p[0] << 24) | ((size_t)p[1] << 16)
                        | ((size_t)p[2] << 8) | (size_t)p[3]);
}

/*
 * The strings of the last REQ, by the pair's place in it: mod_lodge sends the
 * same names in the same order every time, and many values too (the server's
 * name, the protocol, the method). One the same as last time's at its place
 * is that str again, its hash already known to the dict, with no decoding
 * and no allocation. A worker serves one REQ at a time, under the GIL.
 */
#define RECENT_PAIRS 48
#define RECENT_MAX_LEN 64

static PyObject *recent[2 * RECENT_PAIRS];

/* s[0..len) as latin-1: the one kept at slot when it is the same, else a new one kept there. */
static PyObject *latin1_at(PyObject **slot, const unsigned char *s, Py_ssize_t len)
{
    PyObject *o = slot != NULL ? *slot : NULL;

    if (o != NULL && PyUnicode_GET_LENGTH(o) == len
        && memcmp(PyUnicode_1BYTE_DATA(o), s, (size_t)len) == 0) {
        Py_INCREF(o);
        return o;
    }
    o = PyUnicode_DecodeLatin1((const char *)s, len, NULL);
    if (o != NULL && slot != NULL && len <= RECENT_MAX_LEN) {
        Py_INCREF(o);
        Py_XSETREF(*slot, o);
    }
    return o;
}

/* Sets each pair of p[0..n) in env; 0, or -1 with an exception set. */
static int put_pairs(PyObject *env, const unsigned char *p, Py_ssize_t n)
{
    Py_ssize_t i = 0, at = 0;

    while (i < n) {
        Py_ssize_t k, v;
        PyObject *name, *value, **slot = at < RECENT_PAIRS ? recent + 2 * at : NULL;
        int rc;

        if (n - i < 2 || (k = get_u16(p + i)) > n - i - 2) {
            goto overrun;
        }
        i += 2;
        if (n - i - k < 4) {
            goto overrun;
        }
        v = get_u32(p + i + k);
        if (v > n - i - k - 4) {
            goto overrun;
        }
        name = latin1_at(slot, p + i, k);
        if (name == NULL) {
            return -1;
        }
        value = latin1_at(slot != NULL ? slot + 1 : NULL, p + i + k + 4, v);
        if (value == NULL) {
            Py_DECREF(name);
            return -1;
        }
        rc = PyDict_SetItem(env, name, value);
        Py_DECREF(name);
        Py_DECREF(value);
        if (rc != 0) {
            return -1;
        }
        i += k + 4 + v;
        at++;
    }
    return 0;

overrun:
    PyErr_Format(PyExc_ValueError, "REQ pairs overrun the frame (%zd bytes)", n);
    return -1;
}

static PyObject *make_environ(PyObject *self, PyObject *args)
{
    PyObject *base, *env;
    Py_buffer pairs;

    (void)self;
    if (!PyArg_ParseTuple(args, "O!y*:environ", &PyDict_Type, &base, &pairs)) {
        return NULL;
    }
    env = PyDict_Copy(base);
    if (env != NULL && put_pairs(env, pairs.buf, pairs.len) != 0) {
        Py_CLEAR(env);
    }
    PyBuffer_Release(&pairs);
    return env;
}

static PyMethodDef methods[] = {
    {"environ", make_environ, METH_VARARGS,
     "environ(base, pairs) -> a copy of base with the REQ pairs set in it"},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_lodge_speedups",
    "The Lodge worker's per-request parsing and scoreboard writes in C.", -1, methods,
    NULL, NULL, NULL, NULL
};

int lodge_board_add_type(PyObject *module);   /* lodge_board.c */

PyMODINIT_FUNC PyInit__lodge_speedups(void)
{
    PyObject *m = PyModule_Create(&module);

    if (m != NULL && lodge_board_add_type(m) != 0) {
        Py_CLEAR(m);
    }
    return m;
}
