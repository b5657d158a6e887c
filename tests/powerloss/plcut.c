/*
 * plcut.c -- a check of the power-loss recorder itself: a write cut short
 * by SIGKILL.
 *
 *   plcut FILE JOURNAL_DIR
 *
 * Run under plsim.so (PLSIM_DIR the directory of FILE), it writes 64 MiB
 * of patterned bytes into FILE with one pwrite and, from a second thread,
 * kills itself with SIGKILL as soon as the recorder's journal holds that
 * write's bytes -- while the kernel is copying them, which Linux stops at
 * a page boundary for a fatal signal: the file then holds a prefix of the
 * write, and the journal a W without its D.  tests/powerloss.sh then
 * checks that plimage accounts for the live file (a recorder that took
 * the write as all or nothing failed here, and in rare rounds of the
 * power-loss test).  Exits only by the kill (status 1 if it was not
 * killed in time, 2 on errors).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LEN ((size_t)64 << 20)

static char journal[4096];

static void *killer(void *arg) {
  struct stat st;
  struct timespec ts = {0, 100000}; /* 0.1 ms */
  (void)arg;
  for (;;) {
    if (stat(journal, &st) == 0 && (size_t)st.st_size >= LEN + 34)
      break; /* S, W and its bytes */
    nanosleep(&ts, NULL);
  }
  kill(getpid(), SIGKILL);
  return NULL;
}

int main(int argc, char **argv) {
  unsigned char *buf;
  pthread_t t;
  size_t i;
  int fd;
  if (argc < 3) {
    fprintf(stderr, "usage: plcut FILE JOURNAL_DIR\n");
    return 2;
  }
  snprintf(journal, sizeof journal, "%s/%s.journal", argv[2],
           strrchr(argv[1], '/') ? strrchr(argv[1], '/') + 1 : argv[1]);
  buf = malloc(LEN);
  if (buf == NULL) return 2;
  for (i = 0; i < LEN; i++) buf[i] = (unsigned char)(i * 2654435761u >> 13);
  fd = open(argv[1], O_RDWR | O_CREAT, 0644);
  if (fd < 0) return 2;
  if (pthread_create(&t, NULL, killer, NULL) != 0) return 2;
  if (pwrite(fd, buf, LEN, 4096) < 0) return 2;
  sleep(5); /* the killer has missed the write: a D entry follows */
  return 1;
}
