/*
 * fuzz_directive.c: the tenant's directive values, as an .htaccess could
 * write them, through lodge_directive.c's readers and lodge_config.c's
 * setters and merge. The input is split at NUL bytes into words.
 *
 * Each reader is held to a plain restatement of what it promises:
 * counts are decimal digits alone, from 1 to the bound; sizes are digits
 * and one K, M or G, above 0 and within a long long; a name is a C
 * identifier; a path stays inside when it is relative and no component is
 * "..". Every refusal is a message naming the directive. LodgeApp either
 * sets all of its fields, from one line, or none; LodgeEnv keeps one value
 * per name; a merge takes each limit from the nearer side.
 */
#include "fuzz_stubs.h"
#include "lodge_directive.h"

#include <limits.h>

#define WORDS_MAX 8

static int all_digits(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
    }
    return n > 0;
}

/* The digits' value, or -1 past the bound (no overflow on the way). */
static long long digits_value(const char *s, size_t n, long long bound)
{
    long long v = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        if (v > (bound - (s[i] - '0')) / 10) {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static void check_count(const char *s, int max)
{
    int out = -5;
    int rv = lodge_parse_count(s, max, &out);
    size_t n = strlen(s);
    long long v = all_digits(s, n) ? digits_value(s, n, LLONG_MAX) : -1;
    int want = v >= 1 && v <= max;

    FUZZ_CHECK(rv == 0 || rv == -1);
    FUZZ_CHECK((rv == 0) == want);
    FUZZ_CHECK(rv != 0 || out == v);
    FUZZ_CHECK(rv == 0 || out == -5);
}

static void check_size(const char *s)
{
    long long out = -5, unit = 1, v;
    int rv = lodge_parse_size(s, &out);
    size_t n = strlen(s);
    int want;

    if (n > 0) {
        switch (s[n - 1]) {
        case 'k': case 'K': unit = 1024LL; n--; break;
        case 'm': case 'M': unit = 1024LL * 1024; n--; break;
        case 'g': case 'G': unit = 1024LL * 1024 * 1024; n--; break;
        }
    }
    v = all_digits(s, n) ? digits_value(s, n, LLONG_MAX / unit) : -1;
    want = v >= 1;
    FUZZ_CHECK((rv == 0) == want);
    FUZZ_CHECK(rv != 0 || out == v * unit);
    FUZZ_CHECK(rv == 0 || out == -5);
}

static void check_inside(const char *s)
{
    int want = *s != '\0' && *s != '/';
    const char *p = s;

    while (want && *p) {
        size_t n = strcspn(p, "/");

        if (n == 2 && p[0] == '.' && p[1] == '.') {
            want = 0;
        }
        p += n;
        if (*p == '/') {
            p++;
        }
    }
    FUZZ_CHECK(lodge_stays_inside(s) == want);
}

static void check_name(const char *s)
{
    int want = (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_';
    const char *p;

    for (p = s + (want ? 1 : 0); want && *p; p++) {
        want = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')
            || (*p >= '0' && *p <= '9') || *p == '_';
    }
    FUZZ_CHECK(lodge_is_name(s, lodge_name_first, lodge_name_rest) == want);
}

static cmd_parms *fake_cmd(apr_pool_t *p, const char *name, const char *path)
{
    cmd_parms *cmd = apr_pcalloc(p, sizeof(*cmd));
    command_rec *rec = apr_pcalloc(p, sizeof(*rec));

    rec->name = name;
    cmd->cmd = rec;
    cmd->pool = p;
    cmd->temp_pool = p;
    cmd->path = (char *)path;
    return cmd;
}

static void check_message(const char *err, const char *directive)
{
    FUZZ_CHECK(err == NULL || strstr(err, directive) != NULL);
}

static void check_app(apr_pool_t *p, const char *kind, const char *file,
                      const char *path)
{
    lodge_dir_conf *d = lodge_create_dir_conf(p, NULL);
    const char *err = lodge_set_app(fake_cmd(p, "LodgeApp", path), d, kind,
                                    file);

    check_message(err, "LodgeApp");
    if (err != NULL) {
        FUZZ_CHECK(d->root == NULL && d->entry == NULL && d->kind == NULL);
        return;
    }
    FUZZ_CHECK(path[0] == '/');
    FUZZ_CHECK(strcmp(kind, "wsgi") == 0 || strcmp(kind, "asgi") == 0
               || strcmp(kind, "node") == 0);
    FUZZ_CHECK(d->root != NULL && d->root[0] == '/');
    FUZZ_CHECK(strlen(d->root) == 1 || d->root[strlen(d->root) - 1] != '/');
    FUZZ_CHECK(lodge_stays_inside(d->entry));
    FUZZ_CHECK(d->callable[0] == '\0'
               || lodge_is_name(d->callable, lodge_name_first, lodge_name_rest));
    FUZZ_CHECK(strcmp(kind, "wsgi") == 0 || d->callable[0] == '\0');
}

/* Limits set from words in turn, each checked against its reader. */
static lodge_dir_conf *limits_from(apr_pool_t *p, char **words, int n)
{
    lodge_dir_conf *d = lodge_create_dir_conf(p, NULL);
    int i;

    for (i = 0; i < n; i++) {
        const char *w = words[i];
        int before = d->timeout;
        const char *err;

        switch ((unsigned char)w[0] % 6) {
        case 0:
            err = lodge_set_timeout(fake_cmd(p, "LodgeTimeout", "/"), d, w + 1);
            check_message(err, "LodgeTimeout");
            FUZZ_CHECK(err != NULL ? d->timeout == before
                       : d->timeout >= 1 && d->timeout <= LODGE_SECONDS_MAX);
            break;
        case 1:
            err = lodge_set_cpu(fake_cmd(p, "LodgeCPU", "/"), d, w + 1);
            check_message(err, "LodgeCPU");
            break;
        case 2:
            err = lodge_set_idle(fake_cmd(p, "LodgeIdle", "/"), d, w + 1);
            check_message(err, "LodgeIdle");
            break;
        case 3:
            err = lodge_set_memory(fake_cmd(p, "LodgeMemory", "/"), d, w + 1);
            check_message(err, "LodgeMemory");
            FUZZ_CHECK(err != NULL || d->memory >= 1);
            break;
        case 4:
            err = lodge_set_concurrency(fake_cmd(p, "LodgeConcurrency", "/"),
                                        d, w + 1);
            check_message(err, "LodgeConcurrency");
            FUZZ_CHECK(err != NULL || (d->concurrency >= 1
                                       && d->concurrency <= LODGE_LANES_MAX));
            break;
        default:
            err = lodge_set_processes(fake_cmd(p, "LodgeProcesses", "/"), d,
                                      w + 1);
            check_message(err, "LodgeProcesses");
            FUZZ_CHECK(err != NULL || d->processes >= 1);
            break;
        }
    }
    return d;
}

static void check_env(apr_pool_t *p, char **words, int n)
{
    lodge_dir_conf *d = lodge_create_dir_conf(p, NULL);
    const lodge_env *e;
    int i, j, accepted = 0;

    for (i = 0; i + 1 < n; i += 2) {
        const char *err = lodge_set_env(fake_cmd(p, "LodgeEnv", "/"), d,
                                        words[i], words[i + 1]);

        check_message(err, "LodgeEnv");
        FUZZ_CHECK((err == NULL)
                   == lodge_is_name(words[i], lodge_name_first, lodge_name_rest));
        accepted += err == NULL;
    }
    if (d->env == NULL) {
        FUZZ_CHECK(accepted == 0);
        return;
    }
    FUZZ_CHECK(d->env->nelts >= 1 && d->env->nelts <= accepted);
    e = (const lodge_env *)d->env->elts;
    for (i = 0; i < d->env->nelts; i++) {
        for (j = i + 1; j < d->env->nelts; j++) {
            FUZZ_CHECK(strcmp(e[i].name, e[j].name) != 0);
        }
    }
}

static void check_merge(apr_pool_t *p, char **words, int n)
{
    int half = n / 2;
    lodge_dir_conf *base = limits_from(p, words, half);
    lodge_dir_conf *over = limits_from(p, words + half, n - half);
    lodge_dir_conf *m = lodge_merge_dir_conf(p, base, over);

    FUZZ_CHECK(m->timeout == (over->timeout != LODGE_UNSET ? over->timeout
                                                           : base->timeout));
    FUZZ_CHECK(m->cpu == (over->cpu != LODGE_UNSET ? over->cpu : base->cpu));
    FUZZ_CHECK(m->idle == (over->idle != LODGE_UNSET ? over->idle : base->idle));
    FUZZ_CHECK(m->processes == (over->processes != LODGE_UNSET
                                ? over->processes : base->processes));
    FUZZ_CHECK(m->memory == (over->memory != LODGE_UNSET ? over->memory
                                                         : base->memory));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_pool();
    char *text = apr_pstrmemdup(p, (const char *)data, size);
    char *words[WORDS_MAX];
    int n = 0, i;
    size_t at = 0;

    /* apr_pstrmemdup ends the copy with a NUL, so the last word ends too. */
    while (n < WORDS_MAX && at <= size) {
        words[n++] = text + at;
        at += strlen(text + at) + 1;
    }
    for (i = 0; i < n; i++) {
        check_count(words[i], INT_MAX);
        check_count(words[i], LODGE_SECONDS_MAX);
        check_size(words[i]);
        check_inside(words[i]);
        check_name(words[i]);
    }
    check_app(p, words[0], n > 1 ? words[1] : NULL, n > 2 ? words[2] : "/t");
    check_env(p, words, n);
    check_merge(p, words, n);
    return 0;
}
