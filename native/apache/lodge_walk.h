/*
 * lodge_walk.h: the directory walk's lstat()s of root's own directories,
 * remembered for a second, and of the tenants' folders, remembered for the
 * request (lodge_walk.c). Apache 2.4.5 and later; on others registering does
 * nothing and nothing is remembered.
 */
#ifndef LODGE_WALK_H
#define LODGE_WALK_H

#include "lodge_compat.h"

void lodge_walk_register(void);

/* FNV-1a of a path, from `seed`: where a path goes in the walk's tables. */
static LODGE_INLINE unsigned lodge_path_hash(const char *path, size_t len,
                                             unsigned seed)
{
    unsigned h = 2166136261u ^ seed;
    size_t i;

    for (i = 0; i < len; i++) {
        h = (h ^ (unsigned char)path[i]) * 16777619u;
    }
    return h;
}

/*
 * The owner of folder `dir` when this request's directory walk lstat()ed it
 * itself and found a directory, no symlink: 1, with *uid and *gid; else 0,
 * and the caller asks stat().
 */
int lodge_walk_owner(request_rec *r, const char *dir, long long *uid,
                     long long *gid);

#endif
