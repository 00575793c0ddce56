/*
 * lodge_walk.c: the directory walk's lstat()s of directories only root can
 * change, remembered for a second (LodgeWalkCache, on by default).
 *
 * An app's URL names no file, so for every request Apache's directory walk
 * lstat()s each component of the path from / down to the app's folder (its
 * shortcut for an existing file does not apply), about 2 us each here: a
 * third of what Apache spends on a small request beyond what a ProxyPass
 * costs it (docs/hot-path.md). Most of those components are the host's: /,
 * /home, /var/www/vhosts, a sandbox's root.
 *
 * What is remembered is only what no tenant can change: a directory owned by
 * root, in a parent that is itself remembered (or is /) and that no one but
 * root may rename entries in (not writable by group or others, or sticky, an
 * entry of which only its owner, root, may move). Anything else, the tenants'
 * own folders and whatever lies in them, is asked of the kernel every time,
 * so a tenant's symlink is judged (SymLinksIfOwnerMatch) as Apache always
 * judges it. Only the walk's lstat()s (APR_FINFO_LINK) are remembered: what
 * they tell the walk is a type and a link, never a time or a size, so a
 * directory's changing mtime cannot go stale. Root's own changes to such a
 * directory are seen within a second.
 *
 * One table per Apache child, its threads taking turns under a lock held for
 * a lookup or a copy: the event MPM hands requests to its idle threads in
 * turn, so a table per thread would rarely see a path twice within a second.
 */
#include "lodge_compat.h"
#include "lodge_config.h"
#include "lodge_walk.h"

#ifdef LODGE_HAS_DIRWALK_STAT

#include <pthread.h>

extern module LODGE_MODULE_DATA lodge_module;

#define WALK_SLOTS 64
#define WALK_PATH_MAX 240
#define WALK_KEEP apr_time_from_sec(1)

typedef struct {
    apr_time_t at;          /* when it was asked; 0: empty */
    apr_int32_t wanted;
    apr_status_t status;    /* what apr_stat() returned */
    apr_finfo_t info;       /* its pointers are not kept, only the values */
    size_t len;
    char path[WALK_PATH_MAX];
} walk_entry;

/*
 * The child's entries. Apache's parent never walks, so each child starts
 * with the table empty and the lock free.
 */
static walk_entry walk_slots[WALK_SLOTS];
static pthread_mutex_t walk_lock = PTHREAD_MUTEX_INITIALIZER;

static unsigned walk_hash(const char *path, size_t len, apr_int32_t wanted)
{
    return lodge_path_hash(path, len, (unsigned)wanted) % WALK_SLOTS;
}

/* Each path has two places (its hash's and the next): a walk's few paths
   must not keep pushing each other out. */
static walk_entry *walk_find(const char *path, size_t len, apr_int32_t wanted,
                             apr_time_t now)
{
    unsigned h = walk_hash(path, len, wanted), i;

    for (i = 0; i < 2; i++) {
        walk_entry *e = &walk_slots[(h + i) % WALK_SLOTS];

        if (e->at != 0 && e->wanted == wanted && e->len == len
            && memcmp(e->path, path, len) == 0
            && now >= e->at && now - e->at <= WALK_KEEP) {
            return e;
        }
    }
    return NULL;
}

/* Where a path not found goes: the emptier or older of its two places. */
static walk_entry *walk_place(const char *path, size_t len, apr_int32_t wanted)
{
    unsigned h = walk_hash(path, len, wanted);
    walk_entry *a = &walk_slots[h], *b = &walk_slots[(h + 1) % WALK_SLOTS];

    return b->at < a->at ? b : a;
}

/* Only root may rename the entries of a directory with this protection. */
static int root_only_entries(const apr_finfo_t *dir)
{
    return !(dir->protection & (APR_FPROT_GWRITE | APR_FPROT_WWRITE))
           || (dir->protection & APR_FPROT_WSTICKY);
}

/*
 * What lstat() said of `path` cannot change but by root: a directory owned
 * by root whose parent is / or was remembered and lets only root rename it.
 */
static int root_only(const char *path, size_t len, apr_int32_t wanted,
                     apr_status_t rv, const apr_finfo_t *info, apr_time_t now)
{
    const char *slash;
    const walk_entry *parent;

    /* A true name (APR_FINFO_NAME) points into the pool of the request that
       asked: never kept. Unix's apr_stat() gives none. */
    if ((rv != APR_SUCCESS && rv != APR_INCOMPLETE)
        || (info->valid & (APR_FINFO_TYPE | APR_FINFO_USER | APR_FINFO_PROT
                           | APR_FINFO_NAME))
           != (APR_FINFO_TYPE | APR_FINFO_USER | APR_FINFO_PROT)
        || info->filetype != APR_DIR || info->user != 0
        || len < 2 || path[0] != '/' || path[len - 1] == '/') {
        return 0;
    }
    slash = path + len - 1;
    while (*slash != '/') {
        slash--;
    }
    if (slash == path) {
        return 1;   /* in / itself */
    }
    parent = walk_find(path, (size_t)(slash - path), wanted, now);
    return parent != NULL && root_only_entries(&parent->info);
}

/*
 * A folder this request's walk lstat()ed itself and found a directory, not a
 * symlink: its lstat() is its stat(), which the APP frame would otherwise ask
 * again for its owner (lodge_walk_owner).
 */
static void note_walked(request_rec *r, const char *path, size_t len,
                        const apr_finfo_t *info)
{
    lodge_request_note *n = lodge_note(r, 1);
    int i = n->walked_count++ % LODGE_WALKED;

    n->walked[i] = apr_pstrmemdup(r->pool, path, len);
    n->walked_uid[i] = (long long)info->user;
    n->walked_gid[i] = (long long)info->group;
}

int lodge_walk_owner(request_rec *r, const char *dir, long long *uid,
                     long long *gid)
{
    const lodge_request_note *n = lodge_note(r, 0);
    int i;

    if (n == NULL) {
        return 0;
    }
    for (i = 0; i < LODGE_WALKED && i < n->walked_count; i++) {
        if (strcmp(n->walked[i], dir) == 0) {
            *uid = n->walked_uid[i];
            *gid = n->walked_gid[i];
            return 1;
        }
    }
    return 0;
}

static apr_status_t walk_stat(apr_finfo_t *finfo, request_rec *r,
                              apr_int32_t wanted)
{
    const lodge_server_conf *s = ap_get_module_config(r->server->module_config,
                                                      &lodge_module);
    const char *path = r->filename;
    apr_time_t now = r->request_time;
    size_t len;
    walk_entry *e;
    apr_status_t rv;

    if (s->walk_cache == 0 || !(wanted & APR_FINFO_LINK) || path == NULL
        || (len = strlen(path)) >= WALK_PATH_MAX) {
        return AP_DECLINED;
    }
    if (pthread_mutex_lock(&walk_lock) != 0) {
        return AP_DECLINED;
    }
    e = walk_find(path, len, wanted, now);
    if (e != NULL) {
        *finfo = e->info;
        rv = e->status;
        pthread_mutex_unlock(&walk_lock);
        finfo->pool = r->pool;
        finfo->fname = path;
        return rv;
    }
    pthread_mutex_unlock(&walk_lock);
    /* What the core would do (its dirwalk_stat), seen on its way back. */
    rv = apr_stat(finfo, path, wanted, r->pool);
    if ((rv == APR_SUCCESS || rv == APR_INCOMPLETE)
        && finfo->filetype == APR_DIR
        && (finfo->valid & (APR_FINFO_USER | APR_FINFO_GROUP))
           == (APR_FINFO_USER | APR_FINFO_GROUP)) {
        note_walked(r, path, len, finfo);
    }
    if (pthread_mutex_lock(&walk_lock) != 0) {
        return rv;
    }
    if (root_only(path, len, wanted, rv, finfo, now)) {
        e = walk_place(path, len, wanted);
        e->at = now;
        e->wanted = wanted;
        e->status = rv;
        e->info = *finfo;
        e->info.pool = NULL;
        e->info.fname = NULL;
        e->info.name = NULL;
        e->info.filehand = NULL;
        e->len = len;
        memcpy(e->path, path, len);
    }
    pthread_mutex_unlock(&walk_lock);
    return rv;
}

void lodge_walk_register(void)
{
    ap_hook_dirwalk_stat(walk_stat, NULL, NULL, APR_HOOK_MIDDLE);
}

#else

int lodge_walk_owner(request_rec *r, const char *dir, long long *uid,
                     long long *gid)
{
    (void)r;
    (void)dir;
    (void)uid;
    (void)gid;
    return 0;
}

void lodge_walk_register(void)
{
}

#endif /* LODGE_HAS_DIRWALK_STAT */
