/*
 * test_create.c -- many openers creating one new database at the same
 * moment: 8 processes, then 8 processes of 4 threads each, released
 * together for every round.  Each opener puts its own item; every open
 * and every put must succeed (none may take a database being created for
 * a damaged one), and afterwards the database holds every item.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"

#define PROCS 8
#define THREADS 4
#define ROUNDS 40 /* DF_CREATE_ROUNDS overrides */

static const df_schema schema = {"PK", "SK", NULL, NULL, 0};

typedef struct opener {
  const char *dir;
  int proc, thread;
  int ok;
  char msg[256];
} opener;

/* Open the database, put {PK = "p<proc>", SK = <thread>}, close. */
static void *open_and_put(void *arg) {
  opener *o = arg;
  df_open_options opts = fx_options(&schema, 1, DF_SYNC_OFF);
  df_db *db = NULL;
  df_buf b;
  char pk[16];
  int code;
  snprintf(pk, sizeof pk, "p%d", o->proc);
  code = df_db_open(o->dir, &opts, &db);
  if (code == DF_OK) {
    df__buf_init(&b);
    fx_item(&b, "PK", fx_str(pk), "SK", fx_int(o->thread), FX_END);
    code = df_db_put(db, b.p, b.len, 0);
    df__buf_free(&b);
  }
  o->ok = code == DF_OK;
  if (!o->ok)
    snprintf(o->msg, sizeof o->msg, "open or put: %s (%s)", df_db_errmsg(db),
             df_errname(code));
  df_db_close(db);
  return NULL;
}

/* A child process: wait until the parent releases every child at once
 * (the pipe closes), then open with `threads` threads (0: on the main
 * thread).  Exits 0 when every opener succeeded. */
static void child(const char *dir, int proc, int threads, int gate) {
  opener os[THREADS];
  pthread_t ts[THREADS];
  char c;
  int i, ok = 1;
  if (read(gate, &c, 1) < 0) _exit(3); /* EOF when the parent closes */
  for (i = 0; i < (threads ? threads : 1); i++) {
    memset(&os[i], 0, sizeof os[i]);
    os[i].dir = dir;
    os[i].proc = proc;
    os[i].thread = i;
    if (threads)
      pthread_create(&ts[i], NULL, open_and_put, &os[i]);
    else
      open_and_put(&os[i]);
  }
  for (i = 0; i < threads; i++) pthread_join(ts[i], NULL);
  for (i = 0; i < (threads ? threads : 1); i++) {
    if (!os[i].ok) {
      fprintf(stderr, "process %d thread %d: %s\n", proc, i, os[i].msg);
      ok = 0;
    }
  }
  _exit(ok ? 0 : 1);
}

/* One round: PROCS children created, released together on a new
 * directory; returns the number of failed children. */
static int round_of(const char *dir, int threads) {
  pid_t pids[PROCS];
  int gate[2], i, failed = 0, status;
  if (pipe(gate) != 0) return PROCS;
  fflush(NULL);
  for (i = 0; i < PROCS; i++) {
    pids[i] = fork();
    if (pids[i] == 0) {
      close(gate[1]);
      child(dir, i, threads, gate[0]);
    }
  }
  close(gate[0]);
  close(gate[1]); /* go */
  for (i = 0; i < PROCS; i++) {
    if (pids[i] < 0 || waitpid(pids[i], &status, 0) != pids[i] ||
        !WIFEXITED(status) || WEXITSTATUS(status) != 0)
      failed++;
  }
  return failed;
}

/* Every item of the round is there. */
static int all_there(const char *dir, int threads) {
  df_open_options opts = fx_options(&schema, 1, DF_SYNC_OFF);
  df_db *db = fx_open(dir, &opts);
  df_stat st;
  int ok;
  if (db == NULL) return 0;
  ok = df_db_stat(db, &st) == DF_OK &&
       st.items == (uint64_t)PROCS * (threads ? threads : 1);
  df_db_close(db);
  return ok;
}

static void run_rounds(int threads) {
  char dir[4200];
  const char *env = getenv("DF_CREATE_ROUNDS");
  int r, failed_rounds = 0, missing = 0, rounds = env ? atoi(env) : ROUNDS;
  for (r = 0; r < rounds; r++) {
    fx_fresh(dir, sizeof dir);
    if (round_of(dir, threads) != 0)
      failed_rounds++;
    else if (!all_there(dir, threads))
      missing++;
    fx_rm(dir);
  }
  printf(
      "%d rounds of %d processes x %d threads: %d with a failed opener, "
      "%d with an item missing\n",
      rounds, PROCS, threads ? threads : 1, failed_rounds, missing);
  CHECK_EQ_INT(failed_rounds, 0);
  CHECK_EQ_INT(missing, 0);
}

static void test_eight_processes_create_one_database(void) {
  run_rounds(0);
}

static void test_processes_and_threads_create_one_database(void) {
  run_rounds(THREADS);
}

int main(void) {
  if (!fx_root_make("test-create")) return 1;
  alarm(600);
  RUN_TEST(test_eight_processes_create_one_database);
  RUN_TEST(test_processes_and_threads_create_one_database);
  fx_root_remove();
  return check_done("test_create");
}
