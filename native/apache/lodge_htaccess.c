/*
 * lodge_htaccess.c: the text of .htaccess files, remembered by what stat()
 * says of them, and given to the directory walk without opening them again
 * (part of LodgeWalkCache, on by default).
 *
 * An app is declared in .htaccess, so Apache reads that file for every
 * request: open, fstat, two reads and a close, about 5 us here, where a
 * ProxyPass reads nothing (docs/hot-path.md). This asks one stat() instead
 * and hands Apache's parser the text it read last time, when the file is the
 * same one: same device and inode, same size, same mtime and ctime to the
 * nanosecond. Whatever is written to a file, by whoever, sets its ctime to the
 * time of the write, and no one but the clock sets a ctime; so a text is only
 * kept once its file has not changed for WALK_SETTLE, and any later write
 * gives a ctime that differs from the kept one. Edits go live on the next
 * request, as without the cache. A file changing within a second of the last
 * change is read from disk each time, until it settles.
 *
 * Anything out of the ordinary (a file that is no regular file, or larger than
 * HT_TEXT_MAX, or that stat() cannot see for another reason than its absence)
 * is left to Apache's own open, so its errors and its logging stay Apache's.
 * Only the text is kept, never the parsed configuration: Apache parses it
 * each time, as it would the file.
 *
 * One table per Apache child, its threads taking turns under a lock held for
 * a lookup or a copy, as lodge_walk.c's.
 */
#include "lodge_compat.h"
#include "lodge_config.h"
#include "lodge_htaccess.h"
#include "lodge_walk.h"

#ifdef LODGE_HAS_OPEN_HTACCESS

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

extern module LODGE_MODULE_DATA lodge_module;

#define HT_SLOTS 128
#define HT_PATH_MAX 240
#define HT_TEXT_MAX 4096
#define WALK_SETTLE apr_time_from_sec(1)

/* What identifies one state of a file: any write changes the ctime. */
typedef struct {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    struct timespec ctime;
} ht_stamp;

typedef struct {
    int used;
    ht_stamp stamp;
    size_t len;
    char path[HT_PATH_MAX];
    size_t size;
    char text[HT_TEXT_MAX];
} ht_entry;

static ht_entry ht_slots[HT_SLOTS];
static pthread_mutex_t ht_lock = PTHREAD_MUTEX_INITIALIZER;

static void stamp_of(const struct stat *st, ht_stamp *s)
{
    memset(s, 0, sizeof(*s));
    s->dev = st->st_dev;
    s->ino = st->st_ino;
    s->size = st->st_size;
    s->mtime = st->st_mtim;
    s->ctime = st->st_ctim;
}

static int same_stamp(const ht_stamp *a, const ht_stamp *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size
           && a->mtime.tv_sec == b->mtime.tv_sec
           && a->mtime.tv_nsec == b->mtime.tv_nsec
           && a->ctime.tv_sec == b->ctime.tv_sec
           && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

static unsigned ht_hash(const char *path, size_t len)
{
    return lodge_path_hash(path, len, 0) % HT_SLOTS;
}

/* The text read from one file, handed to Apache's parser line by line. */
typedef struct {
    const char *text;
    size_t size;
    size_t at;
} ht_reader;

/* As apr_file_gets(), which Apache's own reader is: a line with its LF, cut
   at bufsize - 1; APR_EOF only once nothing is left. */
static apr_status_t ht_gets(void *buf, apr_size_t bufsize, void *param)
{
    ht_reader *t = param;
    char *out = buf;
    size_t n = 0;

    if (bufsize <= 1) {
        return APR_SUCCESS;
    }
    while (n < bufsize - 1 && t->at < t->size) {
        char c = t->text[t->at++];

        out[n++] = c;
        if (c == '\n') {
            break;
        }
    }
    out[n] = '\0';
    return n > 0 ? APR_SUCCESS : APR_EOF;
}

static apr_status_t ht_getc(char *ch, void *param)
{
    ht_reader *t = param;

    if (t->at >= t->size) {
        return APR_EOF;
    }
    *ch = t->text[t->at++];
    return APR_SUCCESS;
}

static apr_status_t ht_close(void *param)
{
    (void)param;
    return APR_SUCCESS;
}

/* The kept text of `path` if it is still the file's, copied into the pool. */
static char *remembered(const char *path, size_t len, const ht_stamp *now,
                        apr_pool_t *p, size_t *size)
{
    const ht_entry *e;
    char *text = NULL;

    if (pthread_mutex_lock(&ht_lock) != 0) {
        return NULL;
    }
    e = &ht_slots[ht_hash(path, len)];
    if (e->used && e->len == len && memcmp(e->path, path, len) == 0
        && same_stamp(&e->stamp, now)) {
        text = apr_palloc(p, e->size + 1);
        memcpy(text, e->text, e->size);
        text[e->size] = '\0';
        *size = e->size;
    }
    pthread_mutex_unlock(&ht_lock);
    return text;
}

static void remember(const char *path, size_t len, const ht_stamp *s,
                     const char *text, size_t size)
{
    ht_entry *e;

    if (pthread_mutex_lock(&ht_lock) != 0) {
        return;
    }
    e = &ht_slots[ht_hash(path, len)];
    e->used = 1;
    e->stamp = *s;
    e->len = len;
    memcpy(e->path, path, len);
    e->size = size;
    memcpy(e->text, text, size);
    pthread_mutex_unlock(&ht_lock);
}

/*
 * The file read as Apache would read it, when it is a regular file of at
 * most HT_TEXT_MAX bytes that did not change while it was read; kept when it
 * has not changed for WALK_SETTLE. NULL leaves the file to Apache.
 */
static char *read_text(const char *path, size_t len, apr_pool_t *p,
                       size_t *size, apr_time_t now)
{
    struct stat before, after;
    ht_stamp s, s2;
    char *text;
    ssize_t n = 0;
    size_t got = 0;
    /* O_NONBLOCK: a file made a FIFO since the stat() must not hold the
       thread in open(); a regular file reads the same either way. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    apr_time_t changed;

    if (fd < 0) {
        return NULL;
    }
    if (fstat(fd, &before) != 0 || !S_ISREG(before.st_mode)
        || before.st_size > HT_TEXT_MAX) {
        close(fd);
        return NULL;
    }
    text = apr_palloc(p, (apr_size_t)before.st_size + 2);
    /* One byte more than the size: a file that grew is not taken. */
    while (got <= (size_t)before.st_size) {
        n = read(fd, text + got, (size_t)before.st_size + 1 - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
    }
    if (n < 0 || got != (size_t)before.st_size || fstat(fd, &after) != 0) {
        close(fd);
        return NULL;
    }
    close(fd);
    text[got] = '\0';
    *size = got;
    stamp_of(&before, &s);
    stamp_of(&after, &s2);
    changed = apr_time_from_sec(before.st_ctime) + before.st_ctim.tv_nsec / 1000;
    if (same_stamp(&s, &s2) && len < HT_PATH_MAX && now > changed
        && now - changed >= WALK_SETTLE) {
        remember(path, len, &s, text, got);
    }
    return text;
}

static apr_status_t open_htaccess(request_rec *r, const char *dir_name,
                                  const char *access_name,
                                  ap_configfile_t **conffile,
                                  const char **full_name)
{
    const lodge_server_conf *conf =
        ap_get_module_config(r->server->module_config, &lodge_module);
    ht_reader *t;
    struct stat st;
    ht_stamp s;
    const char *path;
    size_t len, size = 0;
    char *text;

    if (conf->walk_cache == 0) {
        return AP_DECLINED;
    }
    path = ap_make_full_path(r->pool, dir_name, access_name);
    if (stat(path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            /* What Apache's own open would have said: there is none. */
            *full_name = path;
            return APR_FROM_OS_ERROR(errno);
        }
        return AP_DECLINED;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > HT_TEXT_MAX) {
        return AP_DECLINED;
    }
    len = strlen(path);
    stamp_of(&st, &s);
    text = len < HT_PATH_MAX ? remembered(path, len, &s, r->pool, &size) : NULL;
    if (text == NULL) {
        text = read_text(path, len, r->pool, &size, apr_time_now());
        if (text == NULL) {
            return AP_DECLINED;
        }
    }
    t = apr_palloc(r->pool, sizeof(*t));
    t->text = text;
    t->size = size;
    t->at = 0;
    *full_name = path;
    *conffile = ap_pcfg_open_custom(r->pool, path, t, ht_getc, ht_gets,
                                    ht_close);
    return APR_SUCCESS;
}

void lodge_htaccess_register(void)
{
    ap_hook_open_htaccess(open_htaccess, NULL, NULL, APR_HOOK_MIDDLE);
}

#else

void lodge_htaccess_register(void)
{
}

#endif /* LODGE_HAS_OPEN_HTACCESS */
