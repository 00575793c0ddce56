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

/*
 * The owner of folder `dir` when this request's directory walk lstat()ed it
 * itself and found a directory, no symlink: 1, with *uid and *gid; else 0,
 * and the caller asks stat().
 */
int lodge_walk_owner(request_rec *r, const char *dir, long long *uid,
                     long long *gid);

#endif
