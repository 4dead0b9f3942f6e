/* The generator the build runs to make halo's bash completion from the
 * CLI's table (cli.h): the hidden `halo help --completion bash`. */
#ifndef HALO_COMPLETION_H
#define HALO_COMPLETION_H
#include <stdio.h>

/* A bash completion script: commands, each command's options, option
 * values that are files or directories, and check ids for `halo run`. */
void print_bash_completion(FILE *f);

#endif
