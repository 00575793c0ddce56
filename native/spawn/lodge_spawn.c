/*
 * lodge-spawn: the one step of a worker's start that runs as root.
 *
 *   lodge-spawn [--cgroup DIR]... [--uid N --gid N] -- PROGRAM [ARG]...
 *
 * lodged starts it with an environment and arguments of its own making: numbers,
 * the cgroup directories lodged created, the runtime's fixed command line. Nothing a
 * tenant wrote (its LodgeEnv, its paths, its file names) is in them; those reach the
 * runtime over its socket once it runs as the tenant. This program joins the worker's
 * cgroups, becomes the tenant (groups, gid, uid, in that order, as suEXEC does),
 * checks that root cannot be had back, and only then execs PROGRAM — so the dynamic
 * loader and the interpreter start unprivileged, and no LD_AUDIT, GCONV_PATH or name
 * not yet known can act on a root process.
 *
 * On failure it writes one line to stderr (lodged keeps a worker's early stderr) and
 * exits LODGE_SPAWN_EXIT, which lodged reads as "could not start as the tenant".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* LODGE_SPAWN_EXIT: distinct from the runtime's own codes and a shell's 126/127. */
#include "../apache/lodge_protocol.h"
/* More cgroup hierarchies than lodged ever makes (memory, pids, cpu, tracking). */
#define MAX_CGROUPS 8
/* The environment PROGRAM gets: lodged's fixed names plus HOME, USER, LOGNAME. */
#define MAX_ENV 64

static void die(const char *what, const char *obj, int err)
{
    fprintf(stderr, "lodge-spawn: %s%s%s: %s\n", what, obj ? " " : "", obj ? obj : "",
            err ? strerror(err) : "refused");
    _exit(LODGE_SPAWN_EXIT);
}

static long number(const char *s, const char *what)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > INT_MAX)
        die("not a number for", what, 0);
    return v;
}

static void join_cgroup(const char *dir)
{
    char path[PATH_MAX], pid[32];
    int fd, n;

    if (dir[0] != '/' || strstr(dir, "/../"))
        die("cgroup directory is not an absolute path:", dir, 0);
    if (snprintf(path, sizeof path, "%s/cgroup.procs", dir) >= (int)sizeof path)
        die("cgroup path too long:", dir, 0);
    /* First of all, still as root: whatever the app starts is born inside the
     * worker's groups, where lodged's limits hold and its kill finds it. */
    fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        die("open", path, errno);
    n = snprintf(pid, sizeof pid, "%d", (int)getpid());
    if (write(fd, pid, (size_t)n) != n)
        die("write", path, errno);
    close(fd);
}

/* HOME, USER and LOGNAME from the password database, which the host keeps. */
static void set_user_env(char **env, int *n, const struct passwd *pw)
{
    static char home[PATH_MAX + 8], user[300], logname[300];

    if (snprintf(home, sizeof home, "HOME=%s", pw->pw_dir) < (int)sizeof home && *n < MAX_ENV - 1)
        env[(*n)++] = home;
    if (snprintf(user, sizeof user, "USER=%s", pw->pw_name) < (int)sizeof user && *n < MAX_ENV - 1)
        env[(*n)++] = user;
    if (snprintf(logname, sizeof logname, "LOGNAME=%s", pw->pw_name) < (int)sizeof logname && *n < MAX_ENV - 1)
        env[(*n)++] = logname;
}

static void become(uid_t uid, gid_t gid, char **env, int *n)
{
    struct passwd *pw;
    uid_t ru, eu, su;
    gid_t rg, eg, sg;

    if (uid == 0 || gid == 0)
        die("refusing to run a worker as root", NULL, 0);
    errno = 0;
    pw = getpwuid(uid);
    /* Groups first, then gid, then uid: once uid is dropped the others cannot change. */
    if (pw ? initgroups(pw->pw_name, gid) : setgroups(1, &gid))
        die("setting the supplementary groups of", pw ? pw->pw_name : "the tenant", errno);
    if (setresgid(gid, gid, gid))
        die("setresgid", NULL, errno);
    if (setresuid(uid, uid, uid))
        die("setresuid", NULL, errno);
    if (setuid(0) == 0 || seteuid(0) == 0)
        die("root could be had back after dropping it", NULL, 0);
    if (getresuid(&ru, &eu, &su) || ru != uid || eu != uid || su != uid ||
        getresgid(&rg, &eg, &sg) || rg != gid || eg != gid || sg != gid)
        die("uid/gid are not the tenant's after dropping root", NULL, 0);
    if (pw)
        set_user_env(env, n, pw);
}

int main(int argc, char **argv)
{
    const char *cgroups[MAX_CGROUPS];
    char *env[MAX_ENV];
    extern char **environ;
    long uid = -1, gid = -1;
    int ncg = 0, nenv = 0, i;

    for (i = 1; i < argc && strcmp(argv[i], "--"); i++) {
        if (i + 1 >= argc)
            die("option without a value:", argv[i], 0);
        if (!strcmp(argv[i], "--cgroup")) {
            if (ncg == MAX_CGROUPS)
                die("too many --cgroup", NULL, 0);
            cgroups[ncg++] = argv[++i];
        } else if (!strcmp(argv[i], "--uid")) {
            uid = number(argv[++i], "--uid");
        } else if (!strcmp(argv[i], "--gid")) {
            gid = number(argv[++i], "--gid");
        } else {
            die("unknown option", argv[i], 0);
        }
    }
    if (i + 1 >= argc)
        die("usage: lodge-spawn [--cgroup DIR]... [--uid N --gid N] -- PROGRAM [ARG]...", NULL, 0);
    if ((uid < 0) != (gid < 0))
        die("--uid and --gid go together", NULL, 0);
    if (geteuid() == 0 && uid < 0)
        die("refusing to exec a worker as root (no --uid)", NULL, 0);

    /* lodged's environment for the worker, minus anything that would speak for the
     * user: those come from the password database below. */
    for (char **e = environ; *e && nenv < MAX_ENV - 4; e++)
        if (strncmp(*e, "HOME=", 5) && strncmp(*e, "USER=", 5) && strncmp(*e, "LOGNAME=", 8))
            env[nenv++] = *e;

    for (int c = 0; c < ncg; c++)
        join_cgroup(cgroups[c]);
    if (uid >= 0)
        become((uid_t)uid, (gid_t)gid, env, &nenv);
    env[nenv] = NULL;

    execve(argv[i + 1], &argv[i + 1], env);
    die("exec", argv[i + 1], errno);
    return LODGE_SPAWN_EXIT;
}
