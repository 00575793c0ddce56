/*
 * lodge_daemon.c: Apache's parent process runs lodged (LodgeDaemon on), so
 * that a host installs one module and nothing else.
 *
 * The parent starts lodged once it has read the configuration, and lists
 * it with the MPM as an "other child": the MPM tells us when it dies (we
 * start it again, waiting longer each time it dies young) and when Apache
 * restarts hard or stops (OC_REASON_RESTART, from the MPM's reclaim).
 *
 *   graceful restart   lodged keeps running (its workers, its queue, the
 *                      old children's connections); the new configuration
 *                      adopts it. Unless LodgeDaemonCommand or LodgeSocket
 *                      changed: then it is stopped and started again.
 *   restart, stop      lodged gets SIGTERM, then SIGKILL after
 *                      LODGE_DAEMON_STOP_WAIT; a restart starts a new one,
 *                      which reads its settings afresh.
 *   parent killed      the kernel sends lodged SIGTERM (PR_SET_PDEATHSIG).
 *
 * Between two configurations (and at the parent's exit) Apache's own logs
 * may be closed: what happens then is not logged (daemon_log).
 *
 * lodged's workers exit by themselves once lodged is gone.
 *
 * The module is unloaded and loaded again on every restart, so nothing of
 * one generation may be reachable from the next: the state lives in memory
 * of the process (lodge_process_data), and the other-child entry and our
 * cleanup, which point at this code, go with pconf and are made anew.
 */
#include "lodge_daemon.h"
#include "lodge_daemon_exec.h"
#include "lodge_config.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The process data's key (and on 1.3 the name of its environment entry). */
#define LODGE_DAEMON_KEY "LODGE_DAEMON_STATE"

/*
 * lodged's SIGTERM lets its requests in flight finish. At a stop or a hard
 * restart those are Apache's, and Apache's children are gone by then, so
 * a few seconds is plenty; it is also how long a stop may take because of
 * lodged.
 */
#define LODGE_DAEMON_STOP_WAIT 5

/* A lodged that ran this long was working: its death is an accident, and
 * another one starts at once. */
#define LODGE_DAEMON_STEADY 10

/*
 * The longest wait before starting a lodged that keeps dying young: long
 * enough that a broken install does not fill the log, short enough that a
 * fix shows within a minute.
 */
#define LODGE_DAEMON_BACKOFF_MAX 60

/*
 * lodged's exit status for bad settings (EX_CONFIG): a new start cannot help.
 * (lodged must never exit with 15: 2.4's MPMs read APEXIT_CHILDFATAL from any
 * child they reap, ours included, and shut Apache down.)
 */
#define LODGE_EX_CONFIG 78

typedef struct {
    lodge_proc_t proc;      /* proc.pid: lodged, or the child about to exec it */
    pid_t parent;           /* the Apache parent this state belongs to */
    time_t since;           /* when it runs lodged (after its backoff wait) */
    time_t term_sent;       /* when it got SIGTERM; 0: not yet */
    int kill_sent;
    int young_deaths;       /* deaths in a row within LODGE_DAEMON_STEADY */
    int held;               /* bad settings: no new start until Apache restarts */
    int listed;             /* in the MPM's other-child list */
    int quiet;              /* the error log is closed: say nothing */
    int errfd;              /* read end of the child's exec-error pipe; -1 */
    char *line;             /* malloc'd: its command, to see it change */

    /* The current configuration's; NULL between two of them. */
    long generation;
    server_rec *s;
    apr_pool_t *pconf;
    char **argv;
    char **envp;
} lodge_daemon;

#define daemon_log(d, level, ...) \
    do { \
        if (!(d)->quiet && (d)->s != NULL) { \
            lodge_slog((level), (d)->s, __VA_ARGS__); \
        } \
    } while (0)

static void daemon_maintenance(int reason, void *data, lodge_wait_t status);

static int backoff(const lodge_daemon *d)
{
    int delay;

    /* The first young death may be a fluke (or a test); then 1, 2, 4... s. */
    if (d->young_deaths <= 1) {
        return 0;
    }
    if (d->young_deaths - 2 >= 6) {
        return LODGE_DAEMON_BACKOFF_MAX;
    }
    delay = 1 << (d->young_deaths - 2);
    return delay > LODGE_DAEMON_BACKOFF_MAX ? LODGE_DAEMON_BACKOFF_MAX : delay;
}

static void daemon_spawn(lodge_daemon *d, const char *line, int delay)
{
    pid_t parent = getpid(), pid;
    int fds[2];

    if (pipe(fds) != 0) {
        daemon_log(d, APLOG_ERR, LODGE_LOGNO(00034)
                   "cannot start lodged: pipe() failed: %s",
                   lodge_errstr(d->pconf, errno));
        return;
    }
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    pid = fork();
    if (pid == -1) {
        daemon_log(d, APLOG_ERR, LODGE_LOGNO(00035)
                   "cannot start lodged: fork() failed: %s",
                   lodge_errstr(d->pconf, errno));
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        close(fds[0]);
        lodge_daemon_exec(d->argv, d->envp, fds[1], parent, delay);
    }
    close(fds[1]);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    d->errfd = fds[0];
    d->proc.pid = pid;
    d->since = time(NULL) + delay;
    d->term_sent = 0;
    d->kill_sent = 0;
    if (d->line == NULL || strcmp(d->line, line) != 0) {
        free(d->line);
        d->line = strdup(line);
    }
    lodge_other_child_register(&d->proc, daemon_maintenance, d, d->pconf);
    d->listed = 1;
    if (delay > 0) {
        daemon_log(d, APLOG_NOTICE, LODGE_LOGNO(00033)
                   "lodged (pid %ld) starts in %d s, after %d quick exits "
                   "in a row: %s", (long)pid, delay, d->young_deaths, line);
    }
    else {
        daemon_log(d, APLOG_NOTICE, LODGE_LOGNO(00032)
                   "started lodged (pid %ld): %s", (long)pid, line);
    }
}

/*
 * How it ended, from a wait status. 2.4's MPM hands over either the exit
 * status or the signal number (lodge_compat.h); no signal is above 64.
 */
static void describe_exit(char *buf, size_t n, int status, int raw,
                          int *code)
{
    *code = -1;
    if (raw && WIFSIGNALED(status)) {
        snprintf(buf, n, "was killed by signal %d%s", WTERMSIG(status),
#ifdef WCOREDUMP
                 WCOREDUMP(status) ? " (core dumped)" :
#endif
                 "");
    }
    else if (raw && WIFEXITED(status)) {
        *code = WEXITSTATUS(status);
        snprintf(buf, n, "exited with status %d", *code);
    }
    else if (!raw && (status == 0 || status > 64)) {
        *code = status;
        snprintf(buf, n, "exited with status %d", *code);
    }
    else if (!raw) {
        snprintf(buf, n, "ended (exit status or signal %d)", status);
    }
    else {
        snprintf(buf, n, "ended (wait status %d)", status);
    }
}

/* lodged is no more: drop what pointed at it; the exec error, if any. */
static int daemon_forget(lodge_daemon *d)
{
    int err = 0;

    if (d->errfd != -1) {
        if (read(d->errfd, &err, sizeof(err)) != (ssize_t)sizeof(err)) {
            err = 0;
        }
        close(d->errfd);
        d->errfd = -1;
    }
    if (d->listed) {
        lodge_other_child_unregister(d, d->pconf);
        d->listed = 0;
    }
    d->proc.pid = 0;
    return err;
}

/*
 * lodged, or the child that was to become it, is gone: say how, and keep
 * count of young deaths and bad settings for the next start.
 */
static void daemon_gone(lodge_daemon *d, int status, int raw)
{
    char how[64];
    int err, code;
    long pid = (long)d->proc.pid;
    long ran = (long)(time(NULL) - d->since);

    err = daemon_forget(d);
    describe_exit(how, sizeof(how), status, raw, &code);

    if (err != 0) {
        daemon_log(d, APLOG_ERR, LODGE_LOGNO(00037)
                   "could not run lodged: %s: %s (LodgeDaemonCommand)",
                   d->argv ? d->argv[0] : "?", lodge_errstr(d->pconf, err));
    }
    if (d->term_sent) {
        daemon_log(d, APLOG_NOTICE, LODGE_LOGNO(00036)
                   "lodged (pid %ld) stopped: it %s", pid, how);
        return;
    }
    daemon_log(d, APLOG_ERR, LODGE_LOGNO(00038)
               "lodged (pid %ld) %s after %ld s", pid, how, ran < 0 ? 0 : ran);
    d->young_deaths = ran < LODGE_DAEMON_STEADY ? d->young_deaths + 1 : 0;
    if (code == LODGE_EX_CONFIG) {
        d->held = 1;
        daemon_log(d, APLOG_ERR, LODGE_LOGNO(00039)
                   "lodged refused its settings (its message is above, or "
                   "in its own log); it is not started again until Apache "
                   "restarts: fix them, then apachectl graceful");
    }
}

/* SIGTERM once, SIGKILL once it has had LODGE_DAEMON_STOP_WAIT seconds. */
static void daemon_term(lodge_daemon *d)
{
    if (d->proc.pid == 0) {
        return;
    }
    if (!d->term_sent) {
        d->term_sent = time(NULL);
        daemon_log(d, APLOG_NOTICE, LODGE_LOGNO(00040)
                   "stopping lodged (pid %ld)", (long)d->proc.pid);
        if (kill(d->proc.pid, SIGTERM) != 0 && errno != ESRCH) {
            daemon_log(d, APLOG_ERR, LODGE_LOGNO(00041)
                       "kill(%ld, SIGTERM) failed: %s", (long)d->proc.pid,
                       lodge_errstr(d->pconf, errno));
        }
    }
    else if (!d->kill_sent
             && time(NULL) - d->term_sent >= LODGE_DAEMON_STOP_WAIT) {
        d->kill_sent = 1;
        daemon_log(d, APLOG_WARNING, LODGE_LOGNO(00042)
                   "lodged (pid %ld) still runs %d s after SIGTERM; "
                   "sending SIGKILL", (long)d->proc.pid,
                   LODGE_DAEMON_STOP_WAIT);
        kill(d->proc.pid, SIGKILL);
    }
}

/* Stops lodged and waits for it, SIGKILL included. */
static void daemon_stop(lodge_daemon *d)
{
    int status;
    pid_t r;

    while (d->proc.pid != 0) {
        daemon_term(d);
        r = waitpid(d->proc.pid, &status, WNOHANG);
        if (r == d->proc.pid) {
            daemon_gone(d, status, 1);
            break;
        }
        if (r == -1 && errno != EINTR) {
            /* Reaped already, by whoever waits for any child. */
            daemon_forget(d);
            break;
        }
        if (d->kill_sent && time(NULL) - d->term_sent
                                > LODGE_DAEMON_STOP_WAIT + 2) {
            daemon_log(d, APLOG_ERR, LODGE_LOGNO(00043)
                       "lodged (pid %ld) did not exit even after SIGKILL; "
                       "leaving it", (long)d->proc.pid);
            break;
        }
        usleep(20000);
    }
    d->term_sent = 0;
    d->kill_sent = 0;
}

static void daemon_maintenance(int reason, void *data, lodge_wait_t status)
{
    lodge_daemon *d = data;

    if (getpid() != d->parent) {
        return;
    }
    switch (reason) {
    case LODGE_OC_DEATH:
        daemon_gone(d, (int)status, lodge_wait_status_is_raw((int)status));
        if (!d->term_sent && !d->held && d->argv != NULL) {
            daemon_spawn(d, d->line, backoff(d));
        }
        break;
    case LODGE_OC_RESTART:
        /* Apache restarts hard or stops. 1.3 reports the death here too. */
        if ((int)status != -1) {
            daemon_gone(d, (int)status, 1);
        }
        else {
            daemon_term(d);
        }
        break;
    case LODGE_OC_LOST:
        daemon_log(d, APLOG_WARNING, LODGE_LOGNO(00044)
                   "lodged (pid %ld) was reaped by someone else",
                   (long)d->proc.pid);
        daemon_forget(d);
        break;
    case LODGE_OC_UNREGISTER:
        d->listed = 0;
        break;
    default:
        break;
    }
}

/* The parent exits (2.4): lodged goes first, while the logs are open. */
static lodge_cleanup_rv daemon_parent_exit(void *data)
{
    lodge_daemon *d = data;

    if (getpid() == d->parent && d->proc.pid != 0) {
        daemon_stop(d);
    }
    LODGE_CLEANUP_DONE;
}

/*
 * pconf goes: a restart (graceful: lodged stays; hard: lodged was sent
 * SIGTERM by now), or the parent's exit.
 */
static lodge_cleanup_rv daemon_config_end(void *data)
{
    lodge_daemon *d = data;

    if (getpid() == d->parent) {
        d->quiet = lodge_parent_exiting(d->generation);
        if (d->proc.pid != 0 && (d->term_sent || d->quiet)) {
            daemon_stop(d);
        }
        if (d->listed) {
            lodge_other_child_unregister(d, d->pconf);
            d->listed = 0;
        }
        lodge_at_parent_exit_kill(d->s, d, daemon_parent_exit);
    }
    d->s = NULL;
    d->pconf = NULL;
    d->argv = NULL;
    d->envp = NULL;
    LODGE_CLEANUP_DONE;
}

void lodge_daemon_config(apr_pool_t *pconf, server_rec *s)
{
    lodge_server_conf *conf = ap_get_module_config(s->module_config,
                                                   &lodge_module);
    lodge_daemon *d;
    const char *line;
    int status;
    pid_t r;

    if (!lodge_in_server_parent()) {
        return;
    }
    d = lodge_process_data(s, LODGE_DAEMON_KEY, sizeof(*d));
    if (d == NULL) {
        lodge_slog(APLOG_ERR, s, LODGE_LOGNO(00031)
                   "out of memory: lodged is not started");
        return;
    }
    if (d->parent != getpid()) {
        memset(d, 0, sizeof(*d));
        d->parent = getpid();
        d->errfd = -1;
    }
    d->s = s;
    d->pconf = pconf;
    d->quiet = 0;
    d->generation = lodge_generation();
    lodge_cleanup_register(pconf, d, daemon_config_end);
    lodge_at_parent_exit(s, d, daemon_parent_exit);

    if (conf->daemon == 0) {
        if (conf->runtime_python != NULL || conf->runtime_node != NULL) {
            lodge_slog(APLOG_WARNING, s, LODGE_LOGNO(00087)
                       "LodgeRuntimes reaches only the lodged Apache starts "
                       "(LodgeDaemon on); with LodgeDaemon off, set "
                       "\"python\" and \"node\" in lodged.json");
        }
        if (d->proc.pid != 0) {
            daemon_log(d, APLOG_NOTICE, LODGE_LOGNO(00045)
                       "LodgeDaemon off: stopping the lodged Apache started");
            daemon_stop(d);
        }
        return;
    }
    d->argv = lodge_daemon_argv(pconf, conf);
    d->envp = lodge_daemon_envp(pconf, LODGE_DAEMON_KEY);
    line = lodge_daemon_line(pconf, d->argv);
    d->held = 0;

    if (d->proc.pid != 0) {
        r = waitpid(d->proc.pid, &status, WNOHANG);
        if (r == d->proc.pid) {
            daemon_gone(d, status, 1);
        }
        else if (r == -1) {
            d->proc.pid = 0;
        }
        else if (d->line == NULL || strcmp(d->line, line) != 0) {
            daemon_log(d, APLOG_NOTICE, LODGE_LOGNO(00046)
                       "LodgeDaemonCommand, LodgeSocket or LodgeRuntimes "
                       "changed: restarting lodged");
            daemon_stop(d);
        }
        else {
            lodge_other_child_register(&d->proc, daemon_maintenance, d,
                                       pconf);
            d->listed = 1;
            lodge_slog(APLOG_INFO, s, LODGE_LOGNO(00047)
                       "lodged (pid %ld) keeps running", (long)d->proc.pid);
            return;
        }
    }
    /* A restart is the host's retry: no waiting left over from before. */
    d->young_deaths = 0;
    daemon_spawn(d, line, 0);
}
