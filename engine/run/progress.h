/* Live progress on stderr: a redrawn block of running checks on a
 * terminal, plain event lines otherwise. */
#ifndef HALO_PROGRESS_H
#define HALO_PROGRESS_H
#include "report/report.h"

void progress_init(int verbose);
void progress_started(check_result *c);
void progress_step(check_result *c, const char *step);
void progress_log(check_result *c, const char *level, const char *text);
void progress_failure(check_result *c, const char *text);
void progress_finished(check_result *c);
void progress_note(const char *text); /* a line about the run itself */
/* Redraw the live block (a timer calls it a few times a second). */
void progress_tick(void);
/* Remove the live block before the final report. */
void progress_end(void);
int progress_is_tty(void);

#endif
