/*
 * plimage.c -- the power-loss simulator's image builder.
 *
 *   plimage JOURNAL LIVE OUT SEED COUNT [FILE...]
 *
 * After the processes that wrote a database under plsim.so (the recorder)
 * were killed, build COUNT crash images OUT/img<i>/FILE of each FILE
 * (default data.mdb redo.log): the state the disk is known to hold -- the
 * last flushed snapshot plus the writes a later flush covered -- plus a
 * random subset of the writes no flush covered yet, split into 4 KiB
 * blocks, each kept or lost on its own, some kept torn (only their first
 * 512-byte sectors written).  Image 0 keeps nothing unflushed, image 1
 * everything (none torn); the others keep each block with a probability drawn
 * per image.  Size changes not yet flushed are kept or lost the same way.
 *
 * Writes made through a writable shared mapping are not in the journal:
 * for a file some process mapped that way, the blocks where the live file
 * (read from LIVE, the page cache once the writers are dead) differs from
 * the journal's account are the unflushed writes of the map, kept or lost
 * like the others.  For a file never mapped the live file must equal the
 * journal's account exactly -- a check that the recorder saw every write.
 *
 * Prints one line per image and file: how many unflushed block writes
 * there were, how many were kept, how many of those torn.  Exit status 3
 * when a journal does not account for its live file, 2 on other errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLOCK 4096
#define SECTOR 512

typedef struct entry {
  char kind;
  char durable; /* a flush covered it, or it went to an O_DSYNC fd */
  char doubt;   /* a W without its D: the process was killed around it */
  uint64_t a, b;
  uint64_t pos;  /* offset of the entry in the journal */
  uint64_t data; /* offset of a W entry's bytes in the journal */
} entry;

typedef struct bytes {
  unsigned char *p;
  size_t len, cap;
} bytes;

static uint64_t rng;
static uint64_t rnd(void) {
  uint64_t x = rng;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return rng = x;
}
static double unit(void) {
  return (double)(rnd() >> 11) / 9007199254740992.0;
}

static void fail(int code, const char *what, const char *a) {
  fprintf(stderr, "plimage: %s %s\n", what, a);
  exit(code);
}

static void grow(bytes *b, size_t len) {
  if (len > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < len) cap *= 2;
    b->p = realloc(b->p, cap);
    if (b->p == NULL) fail(2, "out of memory", "");
    memset(b->p + b->cap, 0, cap - b->cap);
    b->cap = cap;
  }
}

static void set_size(bytes *b, size_t len) {
  grow(b, len);
  if (len < b->len) memset(b->p + len, 0, b->len - len);
  b->len = len;
}

static void put(bytes *b, uint64_t off, const unsigned char *p, size_t n) {
  if (off + n > b->len) set_size(b, (size_t)(off + n));
  memcpy(b->p + off, p, n);
}

static bytes slurp(const char *path, int must) {
  bytes b = {NULL, 0, 0};
  struct stat st;
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    if (must) fail(2, "cannot open", path);
    return b;
  }
  if (fstat(fileno(f), &st) != 0) fail(2, "cannot stat", path);
  set_size(&b, (size_t)st.st_size);
  if (b.len && fread(b.p, 1, b.len, f) != b.len) fail(2, "cannot read", path);
  fclose(f);
  return b;
}

static void spit(const char *path, const bytes *b) {
  FILE *f = fopen(path, "wb");
  if (f == NULL) fail(2, "cannot create", path);
  if (b->len && fwrite(b->p, 1, b->len, f) != b->len)
    fail(2, "cannot write", path);
  if (fclose(f) != 0) fail(2, "cannot write", path);
}

static uint64_t get64(const unsigned char *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

/* Parse a journal; a torn last entry (the writer was killed while
 * appending it) is dropped. */
static entry *parse(const bytes *j, size_t *n) {
  entry *e = NULL;
  size_t cap = 0, pos = 0;
  *n = 0;
  while (pos + 17 <= j->len) {
    entry x;
    x.kind = (char)j->p[pos];
    x.a = get64(j->p + pos + 1);
    x.b = get64(j->p + pos + 9);
    x.pos = pos;
    x.data = pos + 17;
    x.durable = 0;
    x.doubt = 0;
    if (x.kind == 'W') {
      if (x.data + x.b > j->len) break;
      pos = (size_t)(x.data + x.b);
    } else if (x.kind == 'S' || x.kind == 'F' || x.kind == 'T' ||
               x.kind == 'U' || x.kind == 'M' || x.kind == 'D' ||
               x.kind == 'Y') {
      pos += 17;
    } else {
      fail(2, "journal entry of unknown kind in", "a journal");
    }
    if (*n == cap) {
      cap = cap ? cap * 2 : 256;
      e = realloc(e, cap * sizeof *e);
      if (e == NULL) fail(2, "out of memory", "");
    }
    e[(*n)++] = x;
  }
  return e;
}

/* Pair each W with the D after it: the count written replaces the
 * intended length (0: the write failed, the W is dropped).  A W without
 * its D (the process was killed around the call) is marked in doubt:
 * kind 'w'.  A U with its T after it is dropped (the T says the size);
 * a U without its T is in doubt: kind 'u'. */
static void pair_writes(entry *e, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    if (e[i].kind == 'U') {
      e[i].doubt = !(i + 1 < n && e[i + 1].kind == 'T');
      e[i].kind = e[i].doubt ? 'u' : 'x';
      continue;
    }
    if (e[i].kind != 'W') continue;
    if (i + 1 < n && (e[i + 1].kind == 'D' || e[i + 1].kind == 'Y') &&
        e[i + 1].a == e[i].pos) {
      if (e[i + 1].b < e[i].b) e[i].b = e[i + 1].b;
      e[i].durable = e[i + 1].kind == 'Y';
      if (e[i].b == 0) e[i].kind = 'x';
    } else {
      e[i].kind = 'w';
      e[i].doubt = 1;
    }
  }
}

typedef struct file_plan {
  const char *name;
  bytes base; /* the last flushed snapshot */
  bytes live; /* the page cache when the writers died */
  bytes journal;
  entry *ops; /* W and T entries after the snapshot, in order,
                 each durable or not ('x': in doubt, found not made) */
  size_t n_ops, n_pending;
  size_t *diff; /* blocks written through the map, unflushed */
  size_t n_diff;
  int mapped;
} file_plan;

/* The base with every W and T of the ops applied, into *full. */
static void account(const file_plan *fp, bytes *full) {
  size_t i;
  set_size(full, 0);
  set_size(full, fp->base.len);
  if (full->len) memcpy(full->p, fp->base.p, full->len);
  for (i = 0; i < fp->n_ops; i++) {
    const entry *x = &fp->ops[i];
    if (x->kind == 'W')
      put(full, x->a, fp->journal.p + x->data, (size_t)x->b);
    else if (x->kind == 'T')
      set_size(full, (size_t)x->a);
  }
}

static void plan_file(file_plan *fp, const char *jdir, const char *live) {
  char path[4096];
  entry *e;
  size_t n, i, s = (size_t)-1;
  uint64_t covered = 0;
  bytes full = {NULL, 0, 0};
  snprintf(path, sizeof path, "%s/%s.journal", jdir, fp->name);
  fp->journal = slurp(path, 0);
  snprintf(path, sizeof path, "%s/%s", live, fp->name);
  fp->live = slurp(path, 0);
  memset(&fp->base, 0, sizeof fp->base);
  e = parse(&fp->journal, &n);
  pair_writes(e, n);
  for (i = 0; i < n; i++) {
    if (e[i].kind == 'S') s = i;
    if (e[i].kind == 'M') fp->mapped = 1;
  }
  if (s == (size_t)-1) {
    /* never opened by a recorded process: the file is as it was */
    fp->base = fp->live;
    fp->n_ops = fp->n_pending = 0;
    free(e);
    return;
  }
  snprintf(path, sizeof path, "%s/%s.snap.%llu", jdir, fp->name,
           (unsigned long long)e[s].b);
  fp->base = slurp(path, 1);
  /* the last F after the snapshot says how far its flush reached */
  for (i = s + 1; i < n; i++)
    if (e[i].kind == 'F' && e[i].a > covered) covered = e[i].a;
  fp->ops = malloc((n + 1) * sizeof *fp->ops);
  fp->n_ops = fp->n_pending = 0;
  for (i = s + 1; i < n; i++) {
    if (e[i].kind != 'W' && e[i].kind != 'T' && e[i].kind != 'w' &&
        e[i].kind != 'u')
      continue;
    if (e[i].pos < covered) e[i].durable = 1;
    fp->ops[fp->n_ops++] = e[i];
  }
  /* What the ops in doubt did, found from the live file, in journal
   * order: a size change in doubt was made when the account with it has
   * the live file's size; a write in doubt wrote a prefix of its bytes
   * (all, none, or as far as the kill let it), the longest whose last
   * byte the live file holds where the account without it differs --
   * later writes to the same place, by other processes, are applied
   * after it either way. */
  for (i = 0; i < fp->n_ops; i++) {
    entry *x = &fp->ops[i];
    if (x->kind == 'u') {
      uint64_t without;
      x->kind = 'x';
      account(fp, &full);
      without = full.len;
      x->kind = 'T';
      account(fp, &full);
      if (full.len != fp->live.len && without == fp->live.len) x->kind = 'x';
    } else if (x->kind == 'w') {
      const unsigned char *w = fp->journal.p + x->data;
      uint64_t j, made = 0;
      x->kind = 'x';
      account(fp, &full);
      for (j = 0; j < x->b && x->a + j < fp->live.len; j++) {
        uint64_t at = x->a + j;
        if (w[j] == fp->live.p[at] &&
            (at >= full.len || full.p[at] != fp->live.p[at]))
          made = j + 1;
      }
      if (fp->live.len > full.len && fp->live.len > x->a &&
          fp->live.len - x->a <= x->b && fp->live.len - x->a > made)
        made = fp->live.len - x->a;
      if (made > 0) {
        x->kind = 'W';
        x->b = made;
      }
    }
  }
  for (i = 0; i < fp->n_ops; i++)
    if ((fp->ops[i].kind == 'W' || fp->ops[i].kind == 'T') &&
        !fp->ops[i].durable)
      fp->n_pending++;
  /* everything applied: the journal's account of the live file */
  account(fp, &full);
  fp->diff = NULL;
  fp->n_diff = 0;
  if (!fp->mapped) {
    if (full.len != fp->live.len ||
        (full.len && memcmp(full.p, fp->live.p, full.len) != 0)) {
      size_t at = 0, lim = full.len < fp->live.len ? full.len : fp->live.len;
      while (at < lim && full.p[at] == fp->live.p[at]) at++;
      fprintf(stderr,
              "plimage: %s: the live file (%zu bytes) is not what its "
              "journal accounts for (%zu bytes): a write was not recorded "
              "(first difference at byte %zu)\n",
              fp->name, fp->live.len, full.len, at);
      for (i = 0; i < fp->n_ops; i++) {
        const entry *x = &fp->ops[i];
        if (x->doubt || (x->kind == 'W' && x->a <= at && at < x->a + x->b))
          fprintf(stderr, "plimage:   %c%s at %llu, %llu bytes\n", x->kind,
                  x->doubt ? " (in doubt)" : "", (unsigned long long)x->a,
                  (unsigned long long)x->b);
      }
      exit(3);
    }
  } else {
    size_t blocks = (fp->live.len + BLOCK - 1) / BLOCK, b;
    fp->diff = malloc((blocks + 1) * sizeof *fp->diff);
    if (fp->live.len > full.len) set_size(&full, fp->live.len);
    for (b = 0; b < blocks; b++) {
      size_t off = b * BLOCK;
      size_t len = fp->live.len - off < BLOCK ? fp->live.len - off : BLOCK;
      if (memcmp(fp->live.p + off, full.p + off, len) != 0)
        fp->diff[fp->n_diff++] = b;
    }
  }
  free(full.p);
  free(e);
}

/* Apply bytes [off, off+n) of src to img, or only a prefix of its
 * sectors when torn.  Returns 1 when torn. */
static int apply_piece(bytes *img, uint64_t off, const unsigned char *src,
                       size_t n, int torn) {
  if (torn) {
    uint64_t first = (off / SECTOR + 1) * SECTOR, end = off + n;
    if (first < end) {
      uint64_t cut =
          first + (rnd() % ((end - first + SECTOR - 1) / SECTOR)) * SECTOR;
      if (cut > off && cut < end) {
        put(img, off, src, (size_t)(cut - off));
        return 1;
      }
    }
  }
  put(img, off, src, n);
  return 0;
}

static void build(const file_plan *fp, double p, double tear, const char *out,
                  const char *label) {
  bytes img = {NULL, 0, 0};
  size_t i, writes = 0, kept = 0, torn = 0, dkept = 0, flushed_len;
  char path[8300];
  set_size(&img, fp->base.len);
  if (img.len) memcpy(img.p, fp->base.p, img.len);
  flushed_len = img.len;
  /* in journal order: a durable entry always lands, an unflushed one with
   * probability p, per 4 KiB block, sometimes torn */
  for (i = 0; i < fp->n_ops; i++) {
    const entry *x = &fp->ops[i];
    if (x->kind != 'W' && x->kind != 'T') continue; /* not made */
    if (x->kind == 'T') {
      if (!x->durable) writes++;
      if (x->durable || unit() < p) {
        set_size(&img, (size_t)x->a);
        if (!x->durable) kept++;
      }
      if (x->durable) flushed_len = (size_t)x->a;
      continue;
    }
    {
      uint64_t off = x->a, end = x->a + x->b;
      const unsigned char *src = fp->journal.p + x->data;
      if (x->durable && end > flushed_len) flushed_len = (size_t)end;
      while (off < end) {
        uint64_t stop = (off / BLOCK + 1) * BLOCK;
        if (stop > end) stop = end;
        if (x->durable) {
          put(&img, off, src, (size_t)(stop - off));
        } else {
          writes++;
          if (unit() < p) {
            kept++;
            torn += apply_piece(&img, off, src, (size_t)(stop - off),
                                unit() < tear);
          }
        }
        src += stop - off;
        off = stop;
      }
    }
  }
  for (i = 0; i < fp->n_diff; i++) {
    size_t off = fp->diff[i] * BLOCK;
    size_t len = fp->live.len - off < BLOCK ? fp->live.len - off : BLOCK;
    if (unit() < p) {
      dkept++;
      torn += apply_piece(&img, off, fp->live.p + off, len, unit() < tear);
    }
  }
  snprintf(path, sizeof path, "%s/%s", out, fp->name);
  spit(path, &img);
  printf(
      "%s %s: p=%.2f unflushed writes %zu kept %zu, map blocks %zu kept "
      "%zu, torn %zu, %zu bytes (flushed %zu, live %zu)\n",
      label, fp->name, p, writes, kept, fp->n_diff, dkept, torn, img.len,
      flushed_len, fp->live.len);
  free(img.p);
}

int main(int argc, char **argv) {
  static const char *defaults[] = {"data.mdb", "redo.log"};
  const char **names;
  file_plan *plans;
  int n_files, count, i, f;
  if (argc < 6) {
    fprintf(stderr, "usage: plimage JOURNAL LIVE OUT SEED COUNT [FILE...]\n");
    return 2;
  }
  rng = strtoull(argv[4], NULL, 10) * 0x9e3779b97f4a7c15ull | 1;
  count = atoi(argv[5]);
  if (argc > 6) {
    names = (const char **)(argv + 6);
    n_files = argc - 6;
  } else {
    names = defaults;
    n_files = 2;
  }
  plans = calloc((size_t)n_files, sizeof *plans);
  for (f = 0; f < n_files; f++) {
    plans[f].name = names[f];
    plan_file(&plans[f], argv[1], argv[2]);
  }
  for (i = 0; i < count; i++) {
    char dir[4096], label[32];
    double p = i == 0 ? 0.0 : i == 1 ? 1.0 : unit();
    snprintf(dir, sizeof dir, "%s/img%d", argv[3], i);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) fail(2, "cannot create", dir);
    snprintf(label, sizeof label, "img%d", i);
    for (f = 0; f < n_files; f++)
      build(&plans[f], p, i == 1 ? 0.0 : 0.15, dir, label);
  }
  return 0;
}
