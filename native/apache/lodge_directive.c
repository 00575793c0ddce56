/*
 * lodge_directive.c: reading directive values (counts, sizes, seconds,
 * names, paths), shared by the tenant's and the host's directives. A bad
 * value's message names the directive, what it accepts and what it got.
 */
#include "lodge_directive.h"

#include <limits.h>
#include <stdlib.h>

const char *lodge_cmd_name(cmd_parms *cmd)
{
    return cmd->cmd->name;
}

/*
 * A whole number above 0 that fits an int, in decimal; the rest of the
 * module adds to these, so the bound keeps that sum in range.
 */
int lodge_parse_count(const char *arg, int max, int *out)
{
    char *end;
    long v;

    if (*arg < '0' || *arg > '9') {
        return -1;
    }
    errno = 0;
    v = strtol(arg, &end, 10);
    if (errno || *end != '\0' || v < 1 || v > max) {
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* Bytes, with an optional K, M or G (powers of 1024) after the number. */
int lodge_parse_size(const char *arg, long long *out)
{
    char *end;
    long long v, unit = 1;

    if (*arg < '0' || *arg > '9') {
        return -1;
    }
    errno = 0;
    v = strtoll(arg, &end, 10);
    if (errno || v < 1) {
        return -1;
    }
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': unit = 1024LL; end++; break;
    case 'm': case 'M': unit = 1024LL * 1024; end++; break;
    case 'g': case 'G': unit = 1024LL * 1024 * 1024; end++; break;
    default: return -1;
    }
    if (*end != '\0' || v > LLONG_MAX / unit) {
        return -1;
    }
    *out = v * unit;
    return 0;
}

const char *lodge_seconds_arg(cmd_parms *cmd, const char *arg, int *out)
{
    if (lodge_parse_count(arg, LODGE_SECONDS_MAX, out) != 0) {
        return apr_psprintf(cmd->pool,
                            "%s takes a whole number of seconds from 1 to %d "
                            "(e.g. %s 30), got '%s'",
                            lodge_cmd_name(cmd), LODGE_SECONDS_MAX, lodge_cmd_name(cmd),
                            arg);
    }
    return NULL;
}

const char *lodge_count_arg(cmd_parms *cmd, const char *arg, int max,
                            const char *what, int example, int *out)
{
    if (lodge_parse_count(arg, max, out) != 0) {
        return apr_psprintf(cmd->pool,
                            "%s takes a number of %s from 1 to %d "
                            "(e.g. %s %d), got '%s'",
                            lodge_cmd_name(cmd), what, max, lodge_cmd_name(cmd),
                            example, arg);
    }
    return NULL;
}

const char *lodge_size_arg(cmd_parms *cmd, const char *arg, long long *out)
{
    if (lodge_parse_size(arg, out) != 0) {
        return apr_psprintf(cmd->pool,
                            "%s takes a size in bytes, with K, M or G after "
                            "the number (e.g. %s 256M), got '%s'",
                            lodge_cmd_name(cmd), lodge_cmd_name(cmd), arg);
    }
    return NULL;
}

int lodge_is_name(const char *s, int (*first)(int), int (*rest)(int))
{
    if (!first((unsigned char)*s)) {
        return 0;
    }
    for (s++; *s; s++) {
        if (!rest((unsigned char)*s)) {
            return 0;
        }
    }
    return 1;
}

int lodge_name_first(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

int lodge_name_rest(int c)
{
    return lodge_name_first(c) || (c >= '0' && c <= '9');
}

/* A relative path that stays below the app root: no '..' component. */
int lodge_stays_inside(const char *path)
{
    const char *p = path;

    if (*p == '\0' || *p == '/') {
        return 0;
    }
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);

        if (n == 2 && p[0] == '.' && p[1] == '.') {
            return 0;
        }
        p += n;
        while (*p == '/') {
            p++;
        }
    }
    return 1;
}
