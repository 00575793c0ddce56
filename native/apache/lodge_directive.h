/*
 * lodge_directive.h: reading directive values (internal to mod_lodge).
 */
#ifndef LODGE_DIRECTIVE_H
#define LODGE_DIRECTIVE_H

#include "lodge_compat.h"

/* A year: a longer LodgeTimeout, LodgeCPU or LodgeIdle is a typo. */
#define LODGE_SECONDS_MAX (366 * 24 * 3600)

/* In a merge function with base, over and m: the nearer setting wins. */
#define LODGE_MERGE(field) \
    m->field = over->field != LODGE_UNSET ? over->field : base->field

const char *lodge_cmd_name(cmd_parms *cmd);

/* A decimal whole number from 1 to max; 0, or -1 when it is not one. */
int lodge_parse_count(const char *arg, int max, int *out);

/* Bytes, with an optional K, M or G (powers of 1024); 0 or -1. */
int lodge_parse_size(const char *arg, long long *out);

/* The same, as a directive's argument: NULL, or the message for Apache. */
const char *lodge_seconds_arg(cmd_parms *cmd, const char *arg, int *out);
/* A count from 1 to max of what (e.g. "processes"); example goes in the message. */
const char *lodge_count_arg(cmd_parms *cmd, const char *arg, int max,
                            const char *what, int example, int *out);
const char *lodge_size_arg(cmd_parms *cmd, const char *arg, long long *out);

/* A name whose first character passes first() and the rest rest(). */
int lodge_is_name(const char *s, int (*first)(int), int (*rest)(int));
int lodge_name_first(int c);
int lodge_name_rest(int c);

/* A relative path that stays below the app root: no '..' component. */
int lodge_stays_inside(const char *path);

#endif /* LODGE_DIRECTIVE_H */
