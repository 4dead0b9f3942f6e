/* The sql module: PostgreSQL through libpq's asynchronous API on the
 * engine's event loop. Connecting and querying yield the task while the
 * socket is not ready; a cancelled task or a passed deadline cancels the
 * query on the server (PQcancel) and closes the connection. Rows arrive
 * one at a time (single-row mode), so row and byte caps hold before the
 * host has buffered a huge result. A server that is down is data. */
#include "core/errors.h"
#include "core/loop.h"
#include "core/options.h"
#include "core/types.h"
#include "core/sandbox.h"
#include "core/sched.h"
#include "core/util.h"
#include "core/events.h"

#include <lauxlib.h>
#include <libpq-fe.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CONN_MT "halo.sql.conn"
#define OP_MT "halo.sql.op"
#define DEFAULT_CONNECT_TIMEOUT 10.0
#define DEFAULT_MAX_ROWS 100000
#define DEFAULT_MAX_BYTES ((lua_Integer)64 << 20)

/* type oids from pg_type.h (server headers are not in libpq-dev) */
enum { OID_BOOL = 16, OID_INT8 = 20, OID_INT2 = 21, OID_INT4 = 23, OID_OID = 26, OID_FLOAT4 = 700, OID_FLOAT8 = 701 };

typedef struct {
    PGconn *pg;
    int busy;          /* a query is in flight */
    char *where;       /* "host:port/db" for messages */
    lua_Integer max_rows, max_bytes;
    char *closed_why;  /* set when the connection was closed under a query */
} conn;

typedef enum { OP_CONNECT, OP_FLUSH, OP_READ } op_phase;

/* One waiting operation; lives on the waiting thread's stack. */
typedef struct {
    conn *c;
    op_phase phase;
    task *waiter;
    int fd;
    int watching;
    loop_timer_id timer;
    int timed_out;
    PostgresPollingStatusType poll;
    /* query state */
    int rows_idx, cols_idx; /* stack slots of the result tables */
    lua_Integer nrows;
    size_t bytes;
    int too_large;
    PGresult *error;        /* the first error result, kept for the message */
    char *cmd_tuples;
    int ncols_seen;
    int exec;               /* conn:exec: return the affected count */
    double query_timeout;   /* conn:query{ timeout = }: seconds, 0 = none */
} sql_op;

/* ---- errors ------------------------------------------------------------ */

/* [-0, +2] nil, err{kind, message, sqlstate?} */
static int push_fail(lua_State *L, const char *kind, const char *sqlstate, const char *fmt, ...)
{
    strbuf sb;
    sb_init(&sb);
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&sb, fmt, ap);
    va_end(ap);
    /* libpq messages end with a newline and may span lines */
    while (sb.len && (sb.buf[sb.len - 1] == '\n' || sb.buf[sb.len - 1] == ' ')) sb.buf[--sb.len] = '\0';
    char *clean = redact(sb.buf ? sb.buf : kind);
    sb_free(&sb);
    lua_pushnil(L);
    halo_error_new(L, kind, clean);
    if (sqlstate) {
        lua_pushstring(L, sqlstate);
        lua_setfield(L, -2, "sqlstate");
    }
    free(clean);
    return 2;
}

/* ---- waiting on the socket ----------------------------------------------- */

static void op_unwatch(sql_op *op)
{
    if (op->watching) loop_unwatch(op->fd);
    op->watching = 0;
    loop_timer_cancel(op->timer);
    op->timer = 0;
}

static void op_ready(int fd, int revents, void *ud)
{
    (void)fd;
    (void)revents;
    sql_op *op = ud;
    /* only the socket: a connect timeout keeps running across the steps of
     * the handshake, or a server that accepts and never answers would hang */
    if (op->watching) loop_unwatch(op->fd);
    op->watching = 0;
    sched_wake(op->waiter);
}

static void op_timeout(void *ud)
{
    sql_op *op = ud;
    op->timer = 0;
    op->timed_out = 1;
    op_unwatch(op);
    sched_wake(op->waiter);
}

static void conn_close(conn *c, const char *why)
{
    if (c->pg) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    if (why && !c->closed_why) c->closed_why = xstrdup(why);
}

/* The task stopped waiting (cancelled, or the check ended): a query still
 * running on the server is cancelled there, and the connection, now in an
 * unknown state, is closed. */
static void op_cancel(void *ud)
{
    sql_op *op = ud;
    op_unwatch(op);
    conn *c = op->c;
    if (op->error) PQclear(op->error);
    op->error = NULL;
    free(op->cmd_tuples);
    op->cmd_tuples = NULL;
    if (!c->pg) return;
    if (op->phase != OP_CONNECT) {
        PGcancel *cancel = PQgetCancel(c->pg);
        if (cancel) {
            char errbuf[256];
            PQcancel(cancel, errbuf, sizeof errbuf);
            PQfreeCancel(cancel);
        }
    }
    c->busy = 0;
    conn_close(c, "a query on it was cancelled, so it was closed");
}

/* Server notices (RAISE NOTICE, warnings) go to the check's log, redacted,
 * instead of libpq's default: straight to stderr. */
static void on_notice(void *arg, const PGresult *res)
{
    (void)arg;
    const char *msg = PQresultErrorMessage(res);
    char *text = xstrdup(msg ? msg : "");
    size_t n = strlen(text);
    while (n && (text[n - 1] == '\n' || text[n - 1] == ' ')) text[--n] = '\0';
    if (events_streaming()) events_log("info", text);
    else halo_warn("postgres: %s", text);
    free(text);
}

static int op_wait(lua_State *L, sql_op *op, int events, double timeout, lua_KFunction k)
{
    op->fd = PQsocket(op->c->pg);
    op->watching = 1;
    loop_watch(op->fd, events, op_ready, op);
    if (timeout > 0 && !op->timer) op->timer = loop_timer(timeout, op_timeout, op);
    return sched_wait(L, op_cancel, op, k, (lua_KContext)op);
}

/* ---- connect ------------------------------------------------------------------ */

static int connect_k(lua_State *L, int status, lua_KContext ctx);

/* Stack during connect: 1 conninfo, 2 opts, 3 op, 4 conn userdata */
static int connect_step(lua_State *L, sql_op *op)
{
    conn *c = op->c;
    if (op->timed_out) {
        op_unwatch(op);
        conn_close(c, NULL);
        return push_fail(L, "timeout", NULL, "connect: no answer from %s within the connect timeout", c->where);
    }
    for (;;) {
        switch (op->poll) {
        case PGRES_POLLING_OK:
            op_unwatch(op);
            PQsetnonblocking(c->pg, 1);
            PQsetNoticeReceiver(c->pg, on_notice, NULL);
            lua_settop(L, 4);
            return 1;
        case PGRES_POLLING_FAILED: {
            op_unwatch(op);
            int r = push_fail(L, "connect", NULL, "connect to %s: %s", c->where, PQerrorMessage(c->pg));
            conn_close(c, NULL);
            return r;
        }
        case PGRES_POLLING_READING:
            return op_wait(L, op, LOOP_READ, 0, connect_k);
        case PGRES_POLLING_WRITING:
            return op_wait(L, op, LOOP_WRITE, 0, connect_k);
        default:
            op->poll = PQconnectPoll(c->pg);
        }
    }
}

static int connect_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    sql_op *op = (sql_op *)ctx;
    if (!op->timed_out) op->poll = PQconnectPoll(op->c->pg);
    return connect_step(L, op);
}

/* "host:port/db" of a connection string, for messages that must not
 * carry the password */
static char *describe_target(const char *conninfo)
{
    char *errmsg = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &errmsg);
    if (!opts) {
        PQfreemem(errmsg);
        return NULL;
    }
    const char *host = "localhost", *port = "5432", *db = NULL, *user = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val || !*o->val) continue;
        if (strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "hostaddr") == 0) host = o->val;
        else if (strcmp(o->keyword, "port") == 0) port = o->val;
        else if (strcmp(o->keyword, "dbname") == 0) db = o->val;
        else if (strcmp(o->keyword, "user") == 0) user = o->val;
        else if (strcmp(o->keyword, "password") == 0) redact_add(o->val);
    }
    char *s = xasprintf("%s:%s/%s", host, port, db ? db : user ? user : "");
    PQconninfoFree(opts);
    return s;
}

static const char *const connect_keys[] = {"connect_timeout", "max_rows", "max_bytes", NULL};

/* sql.connect(conninfo_or_url [, {connect_timeout, max_rows, max_bytes}]) -> conn | nil, err */
static int sql_connect(lua_State *L)
{
    const char *conninfo = luaL_checkstring(L, 1);
    lua_settop(L, 2);
    double timeout = DEFAULT_CONNECT_TIMEOUT;
    lua_Integer max_rows = DEFAULT_MAX_ROWS, max_bytes = DEFAULT_MAX_BYTES;
    if (!lua_isnil(L, 2)) {
        halo_check_options(L, 2, connect_keys);
        if (lua_getfield(L, 2, "connect_timeout") != LUA_TNIL) {
            timeout = lua_tonumber(L, -1);
            luaL_argcheck(L, timeout > 0, 2, "connect_timeout must be positive seconds");
        }
        if (lua_getfield(L, 2, "max_rows") != LUA_TNIL) {
            max_rows = lua_tointeger(L, -1);
            luaL_argcheck(L, max_rows > 0, 2, "max_rows must be a positive integer");
        }
        if (lua_getfield(L, 2, "max_bytes") != LUA_TNIL) {
            max_bytes = lua_tointeger(L, -1);
            luaL_argcheck(L, max_bytes > 0, 2, "max_bytes must be a positive integer");
        }
        lua_settop(L, 2);
    }
    task *me = sched_waiter(L, "sql.connect");
    double deadline = sandbox_deadline(L);
    if (deadline > 0 && deadline - clock_mono() < timeout) timeout = fmax(deadline - clock_mono(), 0.001);

    /* the Lua objects first: making them may raise, and nothing on the C
     * heap may be lost when it does */
    sql_op *op = (sql_op *)lua_newuserdatauv(L, sizeof *op, 0); /* 3 */
    memset(op, 0, sizeof *op);
    conn *c = (conn *)lua_newuserdatauv(L, sizeof *c, 0); /* 4 */
    memset(c, 0, sizeof *c);
    char *where = describe_target(conninfo);
    if (!where) return push_fail(L, "connect", NULL, "connect: the connection string does not parse");
    c->where = where;
    c->max_rows = max_rows;
    c->max_bytes = max_bytes;
    luaL_setmetatable(L, CONN_MT);
    c->pg = PQconnectStart(conninfo);
    if (!c->pg) return push_fail(L, "connect", NULL, "connect to %s: out of memory", where);
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        int r = push_fail(L, "connect", NULL, "connect to %s: %s", where, PQerrorMessage(c->pg));
        conn_close(c, NULL);
        return r;
    }
    op->c = c;
    op->waiter = me;
    op->phase = OP_CONNECT;
    op->poll = PGRES_POLLING_WRITING;
    op->timer = loop_timer(timeout, op_timeout, op);
    return connect_step(L, op);
}

/* ---- query ------------------------------------------------------------------ */

static conn *check_conn(lua_State *L)
{
    conn *c = (conn *)luaL_testudata(L, 1, CONN_MT);
    /* luaL_checkudata would name what was passed by its __name, which a
     * script can forge: say what it really is */
    if (!c) luaL_argerror(L, 1, lua_pushfstring(L, CONN_MT " expected, got %s", luaL_typename(L, 1)));
    return c;
}

/* [-0, +1] a field's value converted by its type */
static void push_value(lua_State *L, const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col)) {
        sandbox_require(L, "json");
        lua_getfield(L, -1, "null");
        lua_remove(L, -2);
        return;
    }
    const char *v = PQgetvalue(res, row, col);
    size_t len = (size_t)PQgetlength(res, row, col);
    switch (PQftype(res, col)) {
    case OID_BOOL:
        lua_pushboolean(L, v[0] == 't');
        return;
    case OID_INT2:
    case OID_INT4:
    case OID_INT8:
    case OID_OID:
        lua_pushinteger(L, (lua_Integer)strtoll(v, NULL, 10));
        return;
    case OID_FLOAT4:
    case OID_FLOAT8:
        if (strcmp(v, "NaN") == 0) lua_pushnumber(L, NAN);
        else if (strcmp(v, "Infinity") == 0) lua_pushnumber(L, HUGE_VAL);
        else if (strcmp(v, "-Infinity") == 0) lua_pushnumber(L, -HUGE_VAL);
        else lua_pushnumber(L, strtod(v, NULL));
        return;
    default: /* text, numeric (exact, so a string), timestamps, json, ... */
        lua_pushlstring(L, v, len);
    }
}

/* Take in one result of the query: rows into the rows table, the first
 * error kept, the command's count remembered. */
static void absorb(lua_State *L, sql_op *op, PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK) {
        int ncols = PQnfields(res);
        if (!op->ncols_seen) {
            op->ncols_seen = 1;
            for (int i = 0; i < ncols; i++) {
                lua_pushstring(L, PQfname(res, i));
                lua_rawseti(L, op->cols_idx, i + 1);
            }
        }
        for (int r = 0; r < PQntuples(res); r++) {
            if (op->too_large) break;
            size_t row_bytes = 0;
            for (int i = 0; i < ncols; i++) row_bytes += (size_t)PQgetlength(res, r, i);
            if (op->nrows + 1 > op->c->max_rows || op->bytes + row_bytes > (size_t)op->c->max_bytes) {
                op->too_large = 1;
                break;
            }
            op->bytes += row_bytes;
            lua_createtable(L, 0, ncols);
            for (int i = 0; i < ncols; i++) {
                push_value(L, res, r, i);
                lua_setfield(L, -2, PQfname(res, i));
            }
            lua_rawseti(L, op->rows_idx, ++op->nrows);
        }
        if (st == PGRES_TUPLES_OK) {
            free(op->cmd_tuples);
            op->cmd_tuples = xstrdup(PQcmdTuples(res));
        }
        PQclear(res);
        return;
    }
    if (st == PGRES_COMMAND_OK || st == PGRES_EMPTY_QUERY) {
        free(op->cmd_tuples);
        op->cmd_tuples = xstrdup(PQcmdTuples(res));
        PQclear(res);
        return;
    }
    if (!op->error) op->error = res;
    else PQclear(res);
}

static int query_k(lua_State *L, int status, lua_KContext ctx);

static int query_finish(lua_State *L, sql_op *op)
{
    conn *c = op->c;
    c->busy = 0;
    if (op->too_large) {
        if (op->error) PQclear(op->error);
        op->error = NULL;
        return push_fail(L, "too_large", NULL, "query on %s: the result passed max_rows (%lld) or max_bytes (%lld)",
                         c->where, (long long)c->max_rows, (long long)c->max_bytes);
    }
    if (op->error) {
        const char *state = PQresultErrorField(op->error, PG_DIAG_SQLSTATE);
        const char *primary = PQresultErrorField(op->error, PG_DIAG_MESSAGE_PRIMARY);
        int r = push_fail(L, "sql", state, "query on %s: %s (SQLSTATE %s)", c->where,
                          primary ? primary : PQresultErrorMessage(op->error), state ? state : "?");
        PQclear(op->error);
        op->error = NULL;
        return r;
    }
    if (op->exec) {
        lua_pushinteger(L, op->cmd_tuples && *op->cmd_tuples ? strtoll(op->cmd_tuples, NULL, 10) : 0);
        free(op->cmd_tuples);
        op->cmd_tuples = NULL;
        return 1;
    }
    free(op->cmd_tuples);
    op->cmd_tuples = NULL;
    lua_pushvalue(L, op->rows_idx);
    lua_pushvalue(L, op->cols_idx);
    return 2;
}

static int query_step(lua_State *L, sql_op *op)
{
    conn *c = op->c;
    if (op->timed_out) {
        /* as a cancelled task's query: stopped on the server, and the
         * connection, in an unknown state now, closed */
        op_cancel(op);
        return push_fail(L, "timeout", NULL, "query on %s: no result within %g s; cancelled on the server, connection closed",
                         c->where, op->query_timeout);
    }
    for (;;) {
        if (!c->pg) return push_fail(L, "closed", NULL, "query on %s: the connection is closed", c->where);
        if (op->phase == OP_FLUSH) {
            int r = PQflush(c->pg);
            if (r < 0) break;
            if (r == 1) return op_wait(L, op, LOOP_READ | LOOP_WRITE, op->query_timeout, query_k);
            op->phase = OP_READ;
        }
        if (!PQconsumeInput(c->pg)) break;
        while (!PQisBusy(c->pg)) {
            PGresult *res = PQgetResult(c->pg);
            if (!res) return query_finish(L, op);
            if (op->too_large && PQresultStatus(res) == PGRES_SINGLE_TUPLE) {
                PQclear(res); /* draining what is left after the cap */
                continue;
            }
            int was_large = op->too_large;
            absorb(L, op, res);
            if (op->too_large && !was_large) {
                /* stop the server producing rows nobody will keep */
                PGcancel *cancel = PQgetCancel(c->pg);
                if (cancel) {
                    char errbuf[256];
                    PQcancel(cancel, errbuf, sizeof errbuf);
                    PQfreeCancel(cancel);
                }
            }
        }
        return op_wait(L, op, LOOP_READ, op->query_timeout, query_k);
    }
    int r = push_fail(L, "connect", NULL, "query on %s: %s", c->where, PQerrorMessage(c->pg));
    c->busy = 0;
    conn_close(c, "the server closed it");
    return r;
}

static int query_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    return query_step(L, (sql_op *)ctx);
}

/* conn:query{ sql = ..., params = {...}, timeout = s }: the same call as
 * conn:query(sql, ...), with a timeout; rewritten here into the short form's
 * stack (2 sql, 3.. params). Returns the timeout, 0 for none. */
static double query_options(lua_State *L, const char *fname)
{
    luaL_checktype(L, 2, LUA_TTABLE);
    if (lua_gettop(L) > 2) luaL_argerror(L, 3, "no arguments after the option table (put them in params)");
    static const char *const query_keys[] = {"sql", "params", "timeout", NULL};
    halo_check_options(L, 2, query_keys);
    double timeout = 0;
    if (lua_getfield(L, 2, "timeout") != LUA_TNIL) {
        int isnum;
        timeout = lua_tonumberx(L, -1, &isnum);
        if (!isnum || !(timeout > 0) || timeout > 1e7) luaL_argerror(L, 2, "timeout must be a positive number of seconds");
    }
    lua_pop(L, 1);
    int params = lua_getfield(L, 2, "params") == LUA_TNIL ? 0 : lua_gettop(L);
    if (params && !lua_istable(L, params)) luaL_argerror(L, 2, "params must be a list");
    lua_Integer n = params ? (lua_Integer)lua_rawlen(L, params) : 0;
    if (lua_getfield(L, 2, "sql") != LUA_TSTRING) luaL_argerror(L, 2, lua_pushfstring(L, "%s needs sql (a string)", fname));
    luaL_checkstack(L, (int)n + 2, "too many parameters");
    for (lua_Integer i = 1; i <= n; i++) lua_rawgeti(L, params, i);
    /* the conn, the sql, then the parameters: the short form's stack */
    int first = lua_gettop(L) - (int)n; /* where the sql is */
    for (int i = 2; i < first; i++) lua_remove(L, 2);
    return timeout;
}

/* conn:query(sql, ...) -> rows, columns | nil, err    conn:exec(sql, ...) -> count | nil, err
 * conn:query{ sql =, params =, timeout = }, conn:exec{ ... }: the same with a timeout */
static int run_query(lua_State *L, int exec)
{
    conn *c = check_conn(L);
    double query_timeout = lua_istable(L, 2) ? query_options(L, exec ? "exec" : "query") : 0;
    const char *sql = luaL_checkstring(L, 2);
    int nparams = lua_gettop(L) - 2;
    if (!c->pg) {
        if (c->closed_why) return push_fail(L, "closed", NULL, "query on %s: %s", c->where, c->closed_why);
        return luaL_error(L, "query on a closed connection");
    }
    if (c->busy) return luaL_error(L, "this connection is busy with another task's query (use one connection per task)");
    task *me = sched_waiter(L, exec ? "conn:exec" : "conn:query");

    /* Parameters as text; the server parses them by the column's type, so
     * a value never becomes SQL. */
    const char **values = lua_newuserdatauv(L, sizeof(char *) * (size_t)(nparams ? nparams : 1), 0);
    int holder = lua_gettop(L);
    sandbox_require(L, "json");
    lua_getfield(L, -1, "null");
    int null_idx = lua_gettop(L);
    for (int i = 0; i < nparams; i++) {
        int idx = i + 3;
        int t = lua_type(L, idx);
        if (t == LUA_TNIL || lua_rawequal(L, idx, null_idx)) values[i] = NULL;
        else if (t == LUA_TBOOLEAN) values[i] = lua_toboolean(L, idx) ? "true" : "false";
        else if (t == LUA_TNUMBER || t == LUA_TSTRING) values[i] = lua_tostring(L, idx); /* converts in place: stays alive */
        else return luaL_error(L, "bad argument #%d to '%s' (parameters are strings, numbers, booleans or nil)", idx,
                               exec ? "exec" : "query");
    }
    if (!PQsendQueryParams(c->pg, sql, nparams, NULL, values, NULL, NULL, 0))
        return push_fail(L, "connect", NULL, "query on %s: %s", c->where, PQerrorMessage(c->pg));
    PQsetSingleRowMode(c->pg);
    lua_settop(L, holder - 1);

    sql_op *op = (sql_op *)lua_newuserdatauv(L, sizeof *op, 0);
    memset(op, 0, sizeof *op);
    luaL_setmetatable(L, OP_MT);
    op->c = c;
    op->waiter = me;
    op->phase = OP_FLUSH;
    op->exec = exec;
    op->query_timeout = query_timeout;
    lua_newtable(L);
    op->rows_idx = lua_gettop(L);
    lua_newtable(L);
    op->cols_idx = lua_gettop(L);
    c->busy = 1;
    return query_step(L, op);
}

static int conn_query(lua_State *L) { return run_query(L, 0); }
static int conn_exec(lua_State *L) { return run_query(L, 1); }

/* A query op collected without finishing (its thread died some other way)
 * still owes its error result back. */
static int op_gc(lua_State *L)
{
    sql_op *op = lua_touserdata(L, 1);
    if (op->error) PQclear(op->error);
    op->error = NULL;
    free(op->cmd_tuples);
    op->cmd_tuples = NULL;
    return 0;
}

/* conn:close(), also <close> and __gc; closing twice is fine */
static int conn_close_l(lua_State *L)
{
    conn *c = check_conn(L);
    if (c->busy) return luaL_error(L, "cannot close a connection while a query on it runs");
    conn_close(c, "closed by the script");
    return 0;
}

static int conn_gc(lua_State *L)
{
    conn *c = (conn *)luaL_checkudata(L, 1, CONN_MT);
    conn_close(c, NULL);
    free(c->where);
    c->where = NULL;
    free(c->closed_why);
    c->closed_why = NULL;
    return 0;
}

/* <close>: like :close(), but never raises on the way out of a scope */
static int conn_close_scope(lua_State *L)
{
    conn *c = (conn *)luaL_checkudata(L, 1, CONN_MT);
    if (!c->busy) conn_close(c, "closed at the end of its scope");
    return 0;
}

static int conn_tostring(lua_State *L)
{
    conn *c = check_conn(L);
    lua_pushfstring(L, "sql connection to %s (%s)", c->where ? c->where : "?", c->pg ? "open" : "closed");
    return 1;
}

/* conn:server_version() -> "15.4" */
static int conn_server_version(lua_State *L)
{
    conn *c = check_conn(L);
    if (!c->pg) return push_fail(L, "closed", NULL, "the connection is closed");
    int v = PQserverVersion(c->pg);
    lua_pushfstring(L, "%d.%d", v / 10000, v % 10000);
    return 1;
}

int luaopen_sql(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"query", conn_query},
        {"exec", conn_exec},
        {"close", conn_close_l},
        {"server_version", conn_server_version},
        {NULL, NULL},
    };
    static const luaL_Reg conn_meta[] = {
        {"__gc", conn_gc}, {"__close", conn_close_scope}, {"__tostring", conn_tostring}, {NULL, NULL},
    };
    halo_type_register(L, &(halo_type){CONN_MT, methods, conn_meta});
    static const luaL_Reg op_meta[] = {{"__gc", op_gc}, {NULL, NULL}};
    halo_type_register(L, &(halo_type){OP_MT, NULL, op_meta});

    static const luaL_Reg funcs[] = {
        {"connect", sql_connect},
        {NULL, NULL},
    };
    luaL_newlib(L, funcs);
    return 1;
}
