/*
 * lodge_daemon_exec.h: starting lodged's process (internal to mod_lodge).
 */
#ifndef LODGE_DAEMON_EXEC_H
#define LODGE_DAEMON_EXEC_H

#include "lodge_compat.h"
#include "lodge_config.h"

#include <sys/types.h>

/*
 * LodgeDaemonCommand (or the node and lodged mod_lodge was built with),
 * then --socket and the LodgeSocket path: lodged listens where mod_lodge
 * connects, whatever its settings say. NULL-terminated, in p.
 */
char **lodge_daemon_argv(apr_pool_t *p, const lodge_server_conf *conf);

/* The command as one line, for the log and to see it change. */
char *lodge_daemon_line(apr_pool_t *p, char **argv);

/* The parent's environment, less what only the parent may see (private_key). */
char **lodge_daemon_envp(apr_pool_t *p, const char *private_key);

/*
 * In the child, between fork() and exec: the parent may have threads (2.4),
 * so only async-signal-safe calls. Default signal handling, a session of
 * its own, death with the parent (Linux), stdin from /dev/null, stdout to
 * Apache's error log, no other descriptor of Apache's. Waits delay seconds
 * first; reports a failed exec down errfd as one int. Does not return.
 */
void lodge_daemon_exec(char **argv, char **envp, int errfd, pid_t parent,
                       int delay);

#endif /* LODGE_DAEMON_EXEC_H */
