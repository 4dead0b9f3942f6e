/* Two sandboxes in one process, each with a scheduler of its own: tasks
 * spawned in one are never run, woken into, cancelled or reported by the
 * other, and making a third state rebinds nothing. Links the engine's core
 * and the task and time modules, not the halo binary. */
#include "core/embedded.h"
#include "core/sandbox.h"
#include "core/sched.h"
#include "core/util.h"
#include "mod/modules.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The core looks embedded sources up by name; this test needs none. */
const halo_embedded_file halo_embedded[] = {{NULL, NULL, 0}};

static const halo_module test_modules[] = {
    {"task", luaopen_task, 0, NULL, "tasks"},
    {"time", luaopen_time, 0, NULL, "sleep"},
    {NULL, NULL, 0, NULL, NULL},
};

static int checks, failures;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        checks++;                                                                    \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                              \
        }                                                                            \
    } while (0)

static lua_State *new_state(void)
{
    sandbox_opts so = {.modules = test_modules};
    lua_State *L = sandbox_new(&so);
    if (!L) {
        fprintf(stderr, "sandbox_new: out of memory\n");
        exit(2);
    }
    sandbox_set_deadline(L, clock_mono() + 20, "the test took too long");
    return L;
}

/* `code` as a task of L; its handle stays referenced (ref) so the outcome
 * can be read after it ended. */
static task *spawn(lua_State *L, const char *code, int *ref)
{
    if (luaL_loadstring(L, code) != LUA_OK) {
        fprintf(stderr, "test chunk: %s\n", lua_tostring(L, -1));
        exit(2);
    }
    task *t = sched_spawn(L, 0);
    *ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return t;
}

static int has_global(lua_State *L, const char *name)
{
    int set = lua_getglobal(L, name) != LUA_TNIL;
    lua_pop(L, 1);
    return set;
}

static lua_Integer int_global(lua_State *L, const char *name)
{
    lua_getglobal(L, name);
    lua_Integer v = lua_tointeger(L, -1);
    lua_pop(L, 1);
    return v;
}

static int is_state(const task *t, const char *state) { return strcmp(sched_task_state(t), state) == 0; }

static void count_failure(int id, const char *text, void *ud)
{
    (void)id;
    (void)text;
    ++*(int *)ud;
}

static double soon(double seconds) { return clock_mono() + seconds; }

int main(void)
{
    lua_State *A = new_state();
    lua_State *B = new_state();
    int ra1, ra2, rb1, rb2;

    task *a1 = spawn(A, "local time = require 'time' ran_a = 0 "
                        "for i = 1, 3 do ran_a = ran_a + 1 time.sleep(0.01) end return 'a'", &ra1);
    task *a2 = spawn(A, "local task, time = require 'task', require 'time' "
                        "local t = task.spawn(function() time.sleep(0.02) a_child = task.current():id() end) "
                        "t:join()", &ra2);
    task *b1 = spawn(B, "ran_b = true require('time').sleep(0.05) done_b = true", &rb1);
    task *b2 = spawn(B, "b2_ran = true", &rb2);

    /* ids and task lists are each state's own */
    CHECK(sched_task_id(a1) == 1 && sched_task_id(a2) == 2);
    CHECK(sched_task_id(b1) == 1 && sched_task_id(b2) == 2);
    CHECK(sched_live_tasks(A) == 2 && sched_live_tasks(B) == 2);
    CHECK(sched_find(A, 1) == a1 && sched_find(B, 1) == b1);

    /* a third state binds nothing: A and B keep their tasks */
    lua_State *C = new_state();
    CHECK(sched_live_tasks(C) == 0 && sched_find(C, 1) == NULL);
    CHECK(sched_live_tasks(A) == 2 && sched_live_tasks(B) == 2);

    /* running A's scheduler to the end runs A's tasks only */
    CHECK(sched_run(A, NULL, soon(5)) == SCHED_DONE);
    CHECK(sched_task_ok(a1) && sched_task_ok(a2));
    CHECK(int_global(A, "ran_a") == 3);
    CHECK(int_global(A, "a_child") == 3); /* A's third task, by A's count */
    lua_rawgeti(A, LUA_REGISTRYINDEX, ra1);
    sched_push_outcome(A, lua_gettop(A));
    lua_rawgeti(A, -1, 1);
    CHECK(lua_isstring(A, -1) && strcmp(lua_tostring(A, -1), "a") == 0);
    lua_pop(A, 3);
    CHECK(sched_live_tasks(A) == 0);
    CHECK(sched_live_tasks(B) == 2);
    CHECK(is_state(b1, "ready") && is_state(b2, "ready")); /* never resumed */
    CHECK(!has_global(B, "ran_b") && !has_global(B, "b2_ran"));
    CHECK(sched_current(B) == NULL && sched_find(B, 2) == b2);

    /* One round of B: b2 ends, b1 sleeps on a timer of the shared loop. */
    CHECK(sched_step(B, 0) == 1);
    CHECK(sched_task_ok(b2) && is_state(b1, "waiting") && has_global(B, "ran_b"));
    /* A's scheduler drives the loop past b1's wake-up: b1 is queued in B,
     * not resumed by A. */
    int ra3;
    task *a3 = spawn(A, "require('time').sleep(0.15)", &ra3);
    CHECK(sched_task_id(a3) == 4);
    CHECK(sched_run(A, a3, soon(5)) == SCHED_DONE && sched_task_ok(a3));
    CHECK(is_state(b1, "ready") && !has_global(B, "done_b"));
    CHECK(sched_run(B, NULL, soon(5)) == SCHED_DONE);
    CHECK(sched_task_ok(b1) && has_global(B, "done_b"));

    /* a failure nobody joined is its own state's to report */
    int ra4;
    spawn(A, "error('only in A')", &ra4);
    CHECK(sched_run(A, NULL, soon(5)) == SCHED_DONE);
    int failed_a = 0, failed_b = 0;
    CHECK(sched_unobserved_failures(B, count_failure, &failed_b) == 0 && failed_b == 0);
    CHECK(sched_unobserved_failures(A, count_failure, &failed_a) == 1 && failed_a == 1);

    /* cancelling all of A's tasks leaves B's waiting */
    int ra5, rb5;
    task *a5 = spawn(A, "require('time').sleep(10)", &ra5);
    task *b5 = spawn(B, "require('time').sleep(0.05) b5_done = true", &rb5);
    CHECK(sched_step(A, 0) == 1 && sched_step(B, 0) == 1);
    CHECK(is_state(a5, "waiting") && is_state(b5, "waiting"));
    CHECK(sched_cancel_all(A) == 1);
    CHECK(is_state(a5, "cancelled") && is_state(b5, "waiting") && sched_live_tasks(B) == 1);
    CHECK(sched_run(B, b5, soon(5)) == SCHED_DONE && sched_task_ok(b5) && has_global(B, "b5_done"));

    /* Ctrl-C for A's line: the target is A's, so B's busy task runs on */
    int ra6, rb6;
    task *a6 = spawn(A, "local n = 0 while true do n = n + 1 end", &ra6);
    task *b6 = spawn(B, "local n = 0 for i = 1, 200000 do n = n + 1 end return n", &rb6);
    sandbox_set_interrupt_target(A, a6);
    sandbox_interrupt_target();
    CHECK(sched_run(B, b6, soon(5)) == SCHED_DONE && sched_task_ok(b6));
    CHECK(sched_run(A, a6, soon(5)) == SCHED_DONE && !sched_task_ok(a6));
    CHECK(sched_error_text(a6) && strstr(sched_error_text(a6), "interrupted"));
    sandbox_set_interrupt_target(A, NULL);

    int refs_a[] = {ra1, ra2, ra3, ra4, ra5, ra6}, refs_b[] = {rb1, rb2, rb5, rb6};
    for (size_t i = 0; i < sizeof refs_a / sizeof *refs_a; i++) luaL_unref(A, LUA_REGISTRYINDEX, refs_a[i]);
    for (size_t i = 0; i < sizeof refs_b / sizeof *refs_b; i++) luaL_unref(B, LUA_REGISTRYINDEX, refs_b[i]);
    CHECK(sched_cancel_all(A) == 0 && sched_cancel_all(B) == 0);
    sandbox_close(C);
    sandbox_close(B);
    sandbox_close(A);

    if (failures) {
        fprintf(stderr, "sched_test: %d of %d checks failed\n", failures, checks);
        return 1;
    }
    printf("sched_test: %d checks passed\n", checks);
    return 0;
}
