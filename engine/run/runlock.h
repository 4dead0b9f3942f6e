/* One run that injects faults per stack at a time: two runs killing and
 * recreating the same replicas make each other's verdicts meaningless, and
 * one's undo restores what the other just broke on purpose. Runs that only
 * read may share a stack. */
#ifndef HALO_RUNLOCK_H
#define HALO_RUNLOCK_H

/* Take the stack's lock for this run (and its workers, which inherit it: a
 * worker still undoing after its runner died keeps holding it). 0: taken;
 * 1: another live run holds it, *holder says which (pid, start, command;
 * caller frees); -1: no state directory to keep locks in (not an error). */
/* The stack is its compose project when the stack file names one (two
 * stack files, or one file with two environments, can point at one project
 * or at two), else the stack file. */
int runlock_take(const char *stack_file, const char *project, const char *command, char **holder);

#endif
