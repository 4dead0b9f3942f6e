/* The automatic undo and the fault journal. Modules register how to undo
 * what they change in the target (internal.undo): a Lua function run at the
 * end of the check, after its defers, newest first, unless the script undid
 * the change itself (internal.cancel_undo). What is pending is also kept on
 * disk (internal.journal), as data, so that `halo cleanup` can undo it
 * should the process be killed outright: a killed container is started
 * again, a fixture created through the API removed. */
#include "core/undo.h"
#include "core/events.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define UNDO_KEY "halo.undo"

/* ---- the fault journal ------------------------------------------------------
 * What this process changed in the target and has not undone yet, kept in
 * <state>/runs/<pid>.json so that `halo cleanup` can restore it should the
 * process be killed (kill -9) before its own cleanup ran. The modules keep
 * it current: an entry when they inject a fault, none once it is undone. */
#define JOURNAL_KEY "halo.journal"

/* Process start time in clock ticks since boot (Linux), so a later pid
 * reuse is not taken for the same process; 0 where /proc has no answer,
 * and for a zombie: it is gone, whoever reaps it. */
unsigned long long journal_start_time(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X') return 0;
    /* after ") " come fields 3..; starttime is field 22 */
    int field = 2;
    for (p++; *p && field < 22; p++)
        if (*p == ' ') field++;
    return strtoull(p, NULL, 10);
}

char *journal_path(long pid)
{
    char *dir = state_dir("runs");
    if (!dir) return NULL;
    char *path = xasprintf("%s/%ld.json", dir, pid);
    free(dir);
    return path;
}

static void journal_write(lua_State *L)
{
    char *path = journal_path((long)getpid());
    if (!path) return;
    strbuf sb;
    sb_init(&sb);
    int n = 0;
    lua_getfield(L, LUA_REGISTRYINDEX, JOURNAL_KEY);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        sb_adds(&sb, n++ ? ",\n  " : "");
        sb_adds(&sb, lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    if (n == 0) {
        unlink(path);
    } else {
        char *tmp = xasprintf("%s.tmp", path);
        FILE *f = fopen(tmp, "w");
        if (f) {
            /* a worker names its runner: `halo cleanup` tells a worker left
             * running by a dead runner from one of a live run */
            long runner = events_streaming() ? (long)getppid() : 0;
            fprintf(f,
                    "{\"pid\": %ld, \"start\": %llu, \"in_worker\": %s, \"runner\": %ld, \"runner_start\": %llu,\n"
                    " \"entries\": [\n  %s\n]}\n",
                    (long)getpid(), journal_start_time((long)getpid()), events_streaming() ? "true" : "false", runner,
                    runner ? journal_start_time(runner) : 0ULL, sb.buf);
            if (fclose(f) == 0) rename(tmp, path);
            else unlink(tmp);
        }
        free(tmp);
    }
    sb_free(&sb);
    free(path);
}

/* Set (value: a JSON string) or clear (nil) the entry at `key` (stack
 * indices), and write the file. */
static void journal_set(lua_State *L, int key, int value)
{
    key = lua_absindex(L, key);
    value = lua_absindex(L, value);
    if (lua_getfield(L, LUA_REGISTRYINDEX, JOURNAL_KEY) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, JOURNAL_KEY);
    }
    lua_pushvalue(L, key);
    lua_pushvalue(L, value);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    journal_write(L);
}

/* journal(key, entry_json | nil): set or clear one entry, and write the file */
static int undo_journal(lua_State *L)
{
    luaL_checkstring(L, 1);
    if (!lua_isnil(L, 2)) luaL_checkstring(L, 2);
    lua_settop(L, 2);
    journal_set(L, 1, 2);
    return 0;
}

/* ---- the automatic undo ----------------------------------------------------
 * Registering an undo and journalling it, and cancelling it and forgetting
 * its entry, are one call each: a check interrupted between two Lua
 * instructions (the instruction hook raises "interrupted" anywhere) can
 * leave neither an undo that is not journalled nor an entry nothing will
 * undo. */

/* undo(description, fn [, key, entry_json]) -> id: run fn at the end of
 * the check (after the check's own defers) unless cancel_undo(id) says the
 * script undid it; with key, journal entry_json under it meanwhile (fn
 * forgets it once it has undone the change: journal(key, nil)) */
static int undo_add(lua_State *L)
{
    const char *what = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    int journalled = !lua_isnoneornil(L, 3);
    if (journalled) {
        luaL_checkstring(L, 3);
        luaL_checkstring(L, 4);
    }
    lua_settop(L, 4);
    lua_getfield(L, LUA_REGISTRYINDEX, UNDO_KEY);
    lua_Integer id = (lua_Integer)lua_rawlen(L, -1) + 1;
    lua_createtable(L, 0, 4);
    lua_pushvalue(L, 2);
    lua_setfield(L, -2, "fn");
    lua_pushfstring(L, "automatic undo (%s): ", what);
    lua_setfield(L, -2, "label");
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "active");
    if (journalled) {
        lua_pushvalue(L, 3);
        lua_setfield(L, -2, "journal");
        journal_set(L, 3, 4); /* on disk before the change it undoes is made */
    }
    lua_rawseti(L, -2, id);
    lua_pushinteger(L, id);
    return 1;
}

/* cancel_undo(id): the script undid the change itself; its journal entry
 * (if it has one) goes with it */
static int undo_cancel(lua_State *L)
{
    lua_Integer id = luaL_checkinteger(L, 1);
    lua_settop(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, UNDO_KEY);
    if (lua_rawgeti(L, -1, id) == LUA_TTABLE) {
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "active");
        if (lua_getfield(L, -1, "journal") == LUA_TSTRING) {
            lua_pushnil(L);
            journal_set(L, -2, -1);
        }
    }
    return 0;
}

/* process_alive(pid, start) -> whether process pid is the one that wrote a
 * journal (same start time where the system tells it) */
static int undo_process_alive(lua_State *L)
{
    lua_Integer pid = luaL_checkinteger(L, 1);
    unsigned long long start = (unsigned long long)luaL_optinteger(L, 2, 0);
    int alive = pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
    /* where /proc tells it: the same process (not a reused pid), not a zombie */
    unsigned long long now = alive ? journal_start_time((long)pid) : 0;
    if (alive && (start || now)) alive = now == start;
    lua_pushboolean(L, alive);
    return 1;
}

/* terminate(pid, start) -> whether SIGTERM went to process pid, the one
 * that wrote a journal (never a later process that reused the number) */
static int undo_terminate(lua_State *L)
{
    lua_Integer pid = luaL_checkinteger(L, 1);
    unsigned long long start = (unsigned long long)luaL_optinteger(L, 2, 0);
    int same = pid > 1 && journal_start_time((long)pid) == start && start != 0;
    lua_pushboolean(L, same && kill((pid_t)pid, SIGTERM) == 0);
    return 1;
}

/* journal_forget(path): remove a dead run's journal once it is restored;
 * nothing but a .json file of the journal directory */
static int undo_journal_forget(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    char *dir = state_dir("runs");
    size_t n = dir ? strlen(dir) : 0;
    size_t len = strlen(path);
    if (!dir || strncmp(path, dir, n) != 0 || path[n] != '/' || strchr(path + n + 1, '/') || len < 5 ||
        strcmp(path + len - 5, ".json") != 0) {
        free(dir);
        return luaL_argerror(L, 1, "not a journal file");
    }
    free(dir);
    unlink(path);
    return 0;
}

void undo_push_pending(lua_State *L)
{
    lua_newtable(L);
    int out = lua_gettop(L);
    if (lua_getfield(L, LUA_REGISTRYINDEX, UNDO_KEY) != LUA_TTABLE) {
        lua_pop(L, 1);
        return;
    }
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1), k = 0;
    for (lua_Integer i = n; i >= 1; i--) { /* newest first */
        lua_rawgeti(L, -1, i);
        lua_getfield(L, -1, "active");
        int active = lua_toboolean(L, -1);
        lua_pop(L, 1);
        if (active) {
            lua_pushboolean(L, 0);
            lua_setfield(L, -2, "active");
            lua_rawseti(L, out, ++k);
        } else {
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
}


void undo_open(lua_State *L, int table)
{
    table = lua_absindex(L, table);
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, UNDO_KEY);
    static const luaL_Reg funcs[] = {
        {"undo", undo_add},
        {"cancel_undo", undo_cancel},
        {"journal", undo_journal},
        {"process_alive", undo_process_alive},
        {"terminate", undo_terminate},
        {"journal_forget", undo_journal_forget},
        {NULL, NULL},
    };
    for (const luaL_Reg *f = funcs; f->name; f++) {
        lua_pushcfunction(L, f->func);
        lua_setfield(L, table, f->name);
    }
}
