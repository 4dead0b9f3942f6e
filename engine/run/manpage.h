/* The generator the build runs to make halo's man page from the CLI's
 * table (cli.h): the hidden `halo help --man`. */
#ifndef HALO_MANPAGE_H
#define HALO_MANPAGE_H
#include <stdio.h>

/* halo(1) in roff. */
void print_manpage(FILE *f, const char *version);

#endif
