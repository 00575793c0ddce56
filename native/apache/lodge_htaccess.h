/*
 * lodge_htaccess.h: .htaccess files' text, remembered by their stat() and
 * given to the directory walk without reading them again (lodge_htaccess.c).
 * Apache 2.4.7 and later; on others registering does nothing.
 */
#ifndef LODGE_HTACCESS_H
#define LODGE_HTACCESS_H

void lodge_htaccess_register(void);

#endif
