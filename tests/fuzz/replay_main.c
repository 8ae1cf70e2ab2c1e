/* The corpus of a fuzz target, replayed without libFuzzer: a main() that
 * runs the target's LLVMFuzzerTestOneInput over every file given, or every
 * file in every directory given (in name order), in one process as libFuzzer
 * would.  Built with the normal compiler in every build and registered as a
 * unit test (tests/fuzz/meson.build), so that CI runs each seed and each
 * input that once crashed.  A crash or a failed check in the target kills
 * the process (non-zero exit); no input at all is a failure too.  As
 * libFuzzer would, it fails an input that runs longer than
 * FUZZ_REPLAY_TIMEOUT seconds (default 60) or makes the process grow past
 * 1 GiB (RSS), and (without ASan, which has its own allocator) it caps the
 * data segment at 2 GiB so that such an input cannot take the machine down.
 *
 * Usage: replay_<target> DIR|FILE...   (FUZZ_REPLAY_VERBOSE=1: name each input) */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>
#include <sys/resource.h>
#include <glib.h>

#if defined(__SANITIZE_ADDRESS__)
#define REPLAY_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define REPLAY_ASAN 1
#endif
#endif

#define RSS_LIMIT_KB (1024L * 1024)         /* as libFuzzer's -rss_limit_mb=2048, but tighter */
#define DATA_LIMIT (2UL * 1024 * 1024 * 1024)

static const char *current;

static void on_alarm(int sig)
{
  static const char msg[] = "replay: timeout: an input ran too long\n";
  (void)sig;
  (void)write(2, msg, sizeof msg - 1);
  if (current)
    (void)write(2, current, strlen(current)), (void)write(2, "\n", 1);
  _exit(1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned timeout_s = 60;

static int run_file(const char *path, bool verbose)
{
  g_autofree char *data = NULL;
  gsize len = 0;
  g_autoptr(GError) error = NULL;

  if (!g_file_get_contents(path, &data, &len, &error)) {
    fprintf(stderr, "replay: %s\n", error->message);
    return -1;
  }
  if (verbose)
    fprintf(stderr, "replay: %s (%zu bytes)\n", path, (size_t)len);
  current = path;
  alarm(timeout_s);
  /* a copy of exactly LEN bytes, so that ASan sees a read past the end */
  uint8_t *copy = g_memdup2(data, len);
  LLVMFuzzerTestOneInput(copy, len);
  g_free(copy);
  alarm(0);
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) == 0 && ru.ru_maxrss > RSS_LIMIT_KB) {
    fprintf(stderr, "replay: %s: the process grew to %ld MiB\n", path, ru.ru_maxrss / 1024);
    return -1;
  }
  return 0;
}

static int cmp_names(gconstpointer a, gconstpointer b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
  bool verbose = g_strcmp0(g_getenv("FUZZ_REPLAY_VERBOSE"), "1") == 0;
  unsigned n = 0;

  if (argc < 2) {
    fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
    return 2;
  }
  if (g_getenv("FUZZ_REPLAY_TIMEOUT"))
    timeout_s = (unsigned)g_ascii_strtoull(g_getenv("FUZZ_REPLAY_TIMEOUT"), NULL, 10);
  signal(SIGALRM, on_alarm);
#ifndef REPLAY_ASAN
  struct rlimit rl = {DATA_LIMIT, DATA_LIMIT};
  (void)setrlimit(RLIMIT_DATA, &rl);
#endif
  for (int i = 1; i < argc; i++) {
    if (!g_file_test(argv[i], G_FILE_TEST_IS_DIR)) {
      if (run_file(argv[i], verbose) < 0)
        return 1;
      n++;
      continue;
    }
    g_autoptr(GError) error = NULL;
    GDir *dir = g_dir_open(argv[i], 0, &error);
    if (!dir) {
      fprintf(stderr, "replay: %s\n", error->message);
      return 1;
    }
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    const char *name;
    while ((name = g_dir_read_name(dir)))
      if (name[0] != '.')
        g_ptr_array_add(names, g_build_filename(argv[i], name, NULL));
    g_dir_close(dir);
    g_ptr_array_sort(names, cmp_names);
    for (guint k = 0; k < names->len; k++) {
      if (g_file_test(names->pdata[k], G_FILE_TEST_IS_DIR))
        continue;
      if (run_file(names->pdata[k], verbose) < 0)
        return 1;
      n++;
    }
  }
  if (n == 0) {
    fprintf(stderr, "replay: no input found\n");
    return 1;
  }
  printf("replay: %u inputs, no crash\n", n);
  return 0;
}
