/*
 * lodge_daemon_exec.c: the command lodged is started with, and the child's
 * side of starting it (between fork() and exec). The supervision (when to
 * start, stop, start again) is lodge_daemon.c's.
 */
#include "lodge_daemon_exec.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#include <sys/syscall.h>
#endif

extern char **environ;

/* An exec error reaches the parent through this descriptor, as one int. */
#define LODGE_ERRFD 3

char **lodge_daemon_argv(apr_pool_t *p, const lodge_server_conf *conf)
{
    apr_array_header_t *argv = apr_array_make(p, 8, sizeof(char *));
    int i;

    if (conf->daemon_command != NULL) {
        for (i = 0; i < conf->daemon_command->nelts; i++) {
            *(char **)apr_array_push(argv) =
                ((char **)conf->daemon_command->elts)[i];
        }
    }
    else {
        *(char **)apr_array_push(argv) = LODGE_DEFAULT_NODE;
        *(char **)apr_array_push(argv) = LODGE_DEFAULT_LODGED;
    }
    /* Whatever the command says, lodged listens where mod_lodge connects. */
    *(char **)apr_array_push(argv) = "--socket";
    *(char **)apr_array_push(argv) = (char *)lodge_socket_path(conf);
    /* The host's LodgeRuntimes win over lodged's own settings. */
    if (conf->runtime_python != NULL) {
        *(char **)apr_array_push(argv) = "--python";
        *(char **)apr_array_push(argv) = (char *)conf->runtime_python;
    }
    if (conf->runtime_node != NULL) {
        *(char **)apr_array_push(argv) = "--node";
        *(char **)apr_array_push(argv) = (char *)conf->runtime_node;
    }
    *(char **)apr_array_push(argv) = NULL;
    return (char **)argv->elts;
}

char *lodge_daemon_line(apr_pool_t *p, char **argv)
{
    char *line = "";
    int i;

    for (i = 0; argv[i] != NULL; i++) {
        line = apr_pstrcat(p, line, i ? " " : "", argv[i], NULL);
    }
    return line;
}

char **lodge_daemon_envp(apr_pool_t *p, const char *private_key)
{
    apr_array_header_t *envp = apr_array_make(p, 32, sizeof(char *));
    char **e;

    for (e = environ; *e != NULL; e++) {
        if (!lodge_env_is_private(*e, private_key)) {
            *(char **)apr_array_push(envp) = *e;
        }
    }
    *(char **)apr_array_push(envp) = NULL;
    return (char **)envp->elts;
}

static void close_from(int lowfd)
{
    struct rlimit rl;
    int fd, max = 1024;

#if defined(__linux__) && defined(SYS_close_range)
    if (syscall(SYS_close_range, (unsigned)lowfd, ~0U, 0) == 0) {
        return;
    }
#endif
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        max = rl.rlim_cur > 65536 ? 65536 : (int)rl.rlim_cur;
    }
    for (fd = lowfd; fd < max; fd++) {
        close(fd);
    }
}

void lodge_daemon_exec(char **argv, char **envp, int errfd, pid_t parent,
                       int delay)
{
    struct sigaction dfl;
    sigset_t none;
    int sig, fd, err;

    /*
     * Apache's handlers, and the signals it ignores (SIGHUP and SIGUSR1
     * while it restarts), would otherwise survive the exec.
     */
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    for (sig = 1; sig < NSIG; sig++) {
        sigaction(sig, &dfl, NULL);
    }
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    /*
     * A session of its own: Apache signals its own process group when it
     * restarts (1.3, prefork), and lodged must see none of that.
     */
    setsid();
#ifdef __linux__
    /*
     * A parent that dies without stopping lodged (kill -9, a restart whose
     * configuration fails to load) still takes it along.
     */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) {
        _exit(0);
    }
#else
    (void)parent;
#endif
    if (delay > 0) {
        sleep((unsigned)delay);
    }

    fd = open("/dev/null", O_RDONLY);
    if (fd > 0) {
        dup2(fd, 0);
        close(fd);
    }
    /* Apache's stderr is its error log: lodged's output goes there too. */
    dup2(2, 1);
    /* Nothing else of Apache's (listening sockets, logs, scoreboard). */
    if (errfd != LODGE_ERRFD) {
        dup2(errfd, LODGE_ERRFD);
    }
    fcntl(LODGE_ERRFD, F_SETFD, FD_CLOEXEC);
    close_from(LODGE_ERRFD + 1);

    execve(argv[0], argv, envp);
    err = errno;
    if (write(LODGE_ERRFD, &err, sizeof(err)) < 0) {
        /* nobody to tell: the exit status says it */
    }
    _exit(127);
}
