/*
 * lodge_board.c: a worker's scoreboard slot written from C (_lodge_speedups.
 * SlotWriter), for the interpreter the module was built against; scoreboard.py
 * does the same in Python where the module is missing, and says what each
 * field holds (sidecar/src/scoreboard/LAYOUT.md has the layout).
 *
 *   w = SlotWriter(map, slot_offset, seq_offset, union, fine_at, prom_at[, clock])
 *   w.begin(method, path, ticket=0)   a request starts: state busy
 *   w.end(status)                     it ended: counters, latency buckets, idle
 *   w.open(); ...stores...; w.close(state)   any other change, bracketed
 *   w.reset()                         a new worker's counters start from zero
 *   w.leaving()                       lodged wrote the slot's leave word
 *
 * Why C: the Python closures' begin() and end() cost ~4 us of a hello
 * request's ~35 in the worker, measured in the request loop (not 1.3 us as
 * alone: between requests the kernel's socket work leaves the closures' cells
 * and objects out of cache); this touches the slot's lines and its own.
 *
 * Each change is a sequence lock, as in scoreboard.py: the slot's sequence
 * number odd while its fields are written, even after. The fences keep the
 * compiler (and any CPU) from moving a field's store outside the bracket.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

/* The slot's fields (scoreboard.py's OFF; LAYOUT.md). */
enum {
    AT_STATE = 8, AT_REQUEST_ID = 16, AT_SINCE = 24, AT_LATENCY_SUM = 32,
    AT_STATUS_CLASS = 40, AT_METHOD = 88, AT_PATH = 96, AT_PROM = 216,
    AT_FINE = 272, AT_LEAVE = 440, AT_TICKET = 444, SLOT_END = 448,
};
#define METHOD_MAX 8
#define PATH_MAX_BYTES 120
#define STATUS_CLASSES 6
#define PROM_BUCKETS 14
#define FINE_BUCKETS 42
#define UNION_MAX 64
#define FLAG_PATH_CUT 1ULL
#define STATE_IDLE 2
#define STATE_BUSY 3

typedef struct {
    PyObject_HEAD
    Py_buffer map;
    unsigned char *slot;
    unsigned char *seqp;
    PyObject *clock;            /* NULL: CLOCK_MONOTONIC, as time.monotonic_ns */
    uint64_t seq, rid, since, meta, total_ns;
    uint64_t by_class[STATUS_CLASSES];
    uint32_t prom[PROM_BUCKETS], fine[FINE_BUCKETS];
    long long bounds[UNION_MAX];
    unsigned char fine_at[UNION_MAX + 1], prom_at[UNION_MAX + 1];
    Py_ssize_t nbounds;
} SlotWriter;

static void put64(unsigned char *p, uint64_t v)
{
    memcpy(p, &v, 8);           /* the board is this machine's order (checked at open) */
}

static void put32(unsigned char *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static void seq_open(SlotWriter *w)
{
    put64(w->seqp, ++w->seq);
    __atomic_thread_fence(__ATOMIC_RELEASE);
}

static void seq_close(SlotWriter *w)
{
    __atomic_thread_fence(__ATOMIC_RELEASE);
    put64(w->seqp, ++w->seq);
}

/* Now in ns, or (uint64_t)-1 with an exception set (a test's clock raised). */
static uint64_t now_ns(SlotWriter *w)
{
    struct timespec ts;
    PyObject *t;
    unsigned long long v;

    if (w->clock == NULL) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
    }
    t = PyObject_CallNoArgs(w->clock);
    if (t == NULL) {
        return (uint64_t)-1;
    }
    v = PyLong_AsUnsignedLongLong(t);
    Py_DECREF(t);
    return v == (unsigned long long)-1 && PyErr_Occurred() ? (uint64_t)-1 : (uint64_t)v;
}

/* A tuple of small non-negative ints into out[0..n); -1 with an exception set. */
static Py_ssize_t small_ints(PyObject *tuple, long long *wide, unsigned char *narrow,
                             Py_ssize_t max, const char *what)
{
    Py_ssize_t i, n;

    if (!PyTuple_Check(tuple) || (n = PyTuple_GET_SIZE(tuple)) > max) {
        PyErr_Format(PyExc_ValueError, "SlotWriter: %s must be a tuple of at most %zd ints", what, max);
        return -1;
    }
    for (i = 0; i < n; i++) {
        long long v = PyLong_AsLongLong(PyTuple_GET_ITEM(tuple, i));

        if (v == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (v < 0 || (narrow != NULL && v > 255)) {
            PyErr_Format(PyExc_ValueError, "SlotWriter: %s[%zd] is out of range", what, i);
            return -1;
        }
        if (wide != NULL) {
            wide[i] = v;
        } else {
            narrow[i] = (unsigned char)v;
        }
    }
    return n;
}

static int writer_init(SlotWriter *w, PyObject *args, PyObject *kw)
{
    static char *names[] = {"map", "slot", "seq", "union", "fine_at", "prom_at", "clock", NULL};
    PyObject *map, *bounds, *fine_at, *prom_at, *clock = Py_None;
    Py_ssize_t slot, seq, n;
    uint64_t had;
    int i;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "OnnOOO|O:SlotWriter", names, &map, &slot, &seq,
                                     &bounds, &fine_at, &prom_at, &clock)) {
        return -1;
    }
    if (w->map.obj != NULL) {
        PyErr_SetString(PyExc_TypeError, "SlotWriter: already made");
        return -1;
    }
    if (PyObject_GetBuffer(map, &w->map, PyBUF_WRITABLE) != 0) {
        return -1;
    }
    if (slot < 0 || seq < 0 || seq % 8 != 0 || slot > w->map.len - SLOT_END || seq > w->map.len - 8) {
        PyErr_SetString(PyExc_ValueError, "SlotWriter: the slot or its sequence number lies outside the map");
        return -1;
    }
    n = small_ints(bounds, w->bounds, NULL, UNION_MAX, "union");
    if (n < 0 || small_ints(fine_at, NULL, w->fine_at, UNION_MAX + 1, "fine_at") != n + 1
        || small_ints(prom_at, NULL, w->prom_at, UNION_MAX + 1, "prom_at") != n + 1) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "SlotWriter: fine_at and prom_at have one more item than union");
        }
        return -1;
    }
    for (i = 0; i <= n; i++) {
        if (w->fine_at[i] >= FINE_BUCKETS || w->prom_at[i] >= PROM_BUCKETS) {
            PyErr_SetString(PyExc_ValueError, "SlotWriter: a bucket index is out of range");
            return -1;
        }
    }
    w->nbounds = n;
    w->slot = (unsigned char *)w->map.buf + slot;
    w->seqp = (unsigned char *)w->map.buf + seq;
    if (clock != Py_None) {
        Py_INCREF(clock);
        w->clock = clock;
    }
    /* A worker before this one may have died mid-write: go on from an even number. */
    memcpy(&had, w->seqp, 8);
    w->seq = (had + 1) & ~(uint64_t)1;
    put64(w->seqp, w->seq);
    return 0;
}

static void writer_dealloc(SlotWriter *w)
{
    if (w->map.obj != NULL) {
        PyBuffer_Release(&w->map);
    }
    Py_CLEAR(w->clock);
    Py_TYPE(w)->tp_free((PyObject *)w);
}

static int ready(SlotWriter *w)
{
    if (w->slot == NULL) {
        PyErr_SetString(PyExc_ValueError, "SlotWriter: not made");
        return 0;
    }
    return 1;
}

/*
 * The bytes of s: bytes as they are, a str as latin-1 ('replace' past U+00FF,
 * as scoreboard.py's encode). A str of one byte a character (most paths) is
 * read in place; any other is encoded into *own, which the caller releases.
 */
static const char *latin1(PyObject *s, Py_ssize_t *len, PyObject **own)
{
    *own = NULL;
    if (PyBytes_Check(s)) {
        *len = PyBytes_GET_SIZE(s);
        return PyBytes_AS_STRING(s);
    }
    if (!PyUnicode_Check(s)) {
        PyErr_Format(PyExc_TypeError, "SlotWriter: str or bytes, not %.80s", Py_TYPE(s)->tp_name);
        return NULL;
    }
    if (PyUnicode_KIND(s) == PyUnicode_1BYTE_KIND) {
        *len = PyUnicode_GET_LENGTH(s);
        return (const char *)PyUnicode_1BYTE_DATA(s);
    }
    if ((*own = PyUnicode_AsEncodedString(s, "latin-1", "replace")) == NULL) {
        return NULL;
    }
    *len = PyBytes_GET_SIZE(*own);
    return PyBytes_AS_STRING(*own);
}

static PyObject *writer_begin(SlotWriter *w, PyObject *args)
{
    PyObject *method, *path, *mown = NULL, *pown = NULL;
    const char *m, *p;
    unsigned long ticket = 0;
    unsigned char word[METHOD_MAX + PATH_MAX_BYTES];
    Py_ssize_t mlen, n;
    uint64_t meta, now;

    if (!ready(w) || !PyArg_ParseTuple(args, "OO|k:begin", &method, &path, &ticket)) {
        return NULL;
    }
    if ((m = latin1(method, &mlen, &mown)) == NULL || (p = latin1(path, &n, &pown)) == NULL) {
        Py_XDECREF(mown);
        return NULL;
    }
    if (mlen > METHOD_MAX) {
        mlen = METHOD_MAX;
    }
    meta = STATE_BUSY | (uint64_t)mlen << 8;
    if (n > PATH_MAX_BYTES) {
        n = PATH_MAX_BYTES;
        meta |= FLAG_PATH_CUT << 32;
    }
    meta |= (uint64_t)n << 16;
    memset(word, 0, METHOD_MAX);
    memcpy(word, m, (size_t)mlen);
    memcpy(word + METHOD_MAX, p, (size_t)n);
    Py_XDECREF(mown);
    Py_XDECREF(pown);
    now = now_ns(w);
    if (now == (uint64_t)-1) {
        return NULL;
    }

    w->meta = meta;
    w->since = now;
    w->rid++;
    seq_open(w);
    put64(w->slot + AT_STATE, w->meta);
    put64(w->slot + AT_REQUEST_ID, w->rid);
    put64(w->slot + AT_SINCE, w->since);
    memcpy(w->slot + AT_METHOD, word, (size_t)(METHOD_MAX + n));
    put32(w->slot + AT_TICKET, (uint32_t)ticket);
    seq_close(w);
    Py_RETURN_NONE;
}

/* bisect_left(union, v): the first bound >= v. */
static Py_ssize_t bucket(const SlotWriter *w, long long v)
{
    Py_ssize_t lo = 0, hi = w->nbounds;

    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;

        if (w->bounds[mid] < v) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static PyObject *writer_end(SlotWriter *w, PyObject *arg)
{
    long status = PyLong_AsLong(arg);
    uint64_t now;
    Py_ssize_t j = 0;
    int c, fb, pb;

    if (!ready(w) || (status == -1 && PyErr_Occurred())) {
        return NULL;
    }
    now = now_ns(w);
    if (now == (uint64_t)-1) {
        return NULL;
    }
    if ((w->meta & 0xFF) == STATE_BUSY) {
        w->total_ns += now - w->since;
        j = bucket(w, (long long)(now - w->since));
    }
    fb = w->fine_at[j];
    pb = w->prom_at[j];
    c = status >= 100 && status <= 599 ? (int)(status / 100 - 1) : 5;
    w->since = now;
    w->meta = (w->meta & ~(uint64_t)0xFF) | STATE_IDLE;   /* its method and path stay shown */
    seq_open(w);
    put64(w->slot + AT_STATE, w->meta);
    put64(w->slot + AT_REQUEST_ID, w->rid);
    put64(w->slot + AT_SINCE, now);
    put64(w->slot + AT_LATENCY_SUM, w->total_ns);
    put64(w->slot + AT_STATUS_CLASS + 8 * c, ++w->by_class[c]);
    put32(w->slot + AT_PROM + 4 * pb, ++w->prom[pb]);
    put32(w->slot + AT_FINE + 4 * fb, ++w->fine[fb]);
    seq_close(w);
    Py_RETURN_NONE;
}

static PyObject *writer_open(SlotWriter *w, PyObject *unused)
{
    (void)unused;
    if (!ready(w)) {
        return NULL;
    }
    seq_open(w);
    Py_RETURN_NONE;
}

static PyObject *writer_close(SlotWriter *w, PyObject *arg)
{
    long state = PyLong_AsLong(arg);
    uint64_t now;

    if (!ready(w) || (state == -1 && PyErr_Occurred())) {
        return NULL;
    }
    if (state < 0 || state > 255) {
        PyErr_SetString(PyExc_ValueError, "SlotWriter: a state is one byte");
        return NULL;
    }
    now = now_ns(w);
    if (now == (uint64_t)-1) {
        return NULL;
    }
    w->meta = (w->meta & ~(uint64_t)0xFF) | (uint64_t)state;
    w->since = now;
    put64(w->slot + AT_STATE, w->meta);
    put64(w->slot + AT_SINCE, w->since);
    seq_close(w);
    Py_RETURN_NONE;
}

static PyObject *writer_reset(SlotWriter *w, PyObject *unused)
{
    (void)unused;
    if (!ready(w)) {
        return NULL;
    }
    w->rid = w->total_ns = w->since = w->meta = 0;
    memset(w->by_class, 0, sizeof w->by_class);
    memset(w->prom, 0, sizeof w->prom);
    memset(w->fine, 0, sizeof w->fine);
    Py_RETURN_NONE;
}

static PyObject *writer_leaving(SlotWriter *w, PyObject *unused)
{
    uint32_t v;

    (void)unused;
    if (!ready(w)) {
        return NULL;
    }
    memcpy(&v, w->slot + AT_LEAVE, 4);
    return PyBool_FromLong(v != 0);
}

static PyMethodDef writer_methods[] = {
    {"begin", (PyCFunction)writer_begin, METH_VARARGS, "begin(method, path, ticket=0): a request starts"},
    {"end", (PyCFunction)writer_end, METH_O, "end(status): the request ended (0: nothing was sent)"},
    {"open", (PyCFunction)writer_open, METH_NOARGS, "open(): a change begins (the sequence number odd)"},
    {"close", (PyCFunction)writer_close, METH_O, "close(state): the change is done, in state"},
    {"reset", (PyCFunction)writer_reset, METH_NOARGS, "reset(): counters from zero"},
    {"leaving", (PyCFunction)writer_leaving, METH_NOARGS, "leaving(): lodged wrote the leave word"},
    {NULL, NULL, 0, NULL}
};

static PyTypeObject SlotWriterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_lodge_speedups.SlotWriter",
    .tp_basicsize = sizeof(SlotWriter),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A worker's scoreboard slot, written from C (scoreboard.py's Slot)",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)writer_init,
    .tp_dealloc = (destructor)writer_dealloc,
    .tp_methods = writer_methods,
};

int lodge_board_add_type(PyObject *module)
{
    if (PyType_Ready(&SlotWriterType) != 0) {
        return -1;
    }
    Py_INCREF(&SlotWriterType);
    if (PyModule_AddObject(module, "SlotWriter", (PyObject *)&SlotWriterType) != 0) {
        Py_DECREF(&SlotWriterType);
        return -1;
    }
    return 0;
}
