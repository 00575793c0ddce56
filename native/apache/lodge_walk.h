/*
 * lodge_walk.h: the directory walk's lstat()s of root's own directories,
 * remembered for a second (lodge_walk.c). Apache 2.4.5 and later; on others
 * registering does nothing.
 */
#ifndef LODGE_WALK_H
#define LODGE_WALK_H

void lodge_walk_register(void);

#endif
