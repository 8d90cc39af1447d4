/* A failed sync for a real process (LD_PRELOAD), as a disk that reports a write-back error does.
 *
 * Once the file SYNCFAULT_TRIGGER exists, the next fsync or fdatasync of a file whose path starts
 * with SYNCFAULT_PATH (the database: its -wal and -journal too) fails with EIO, once; every other
 * sync succeeds. Once is what Linux does: it reports a write-back error to one caller and then
 * clears it, so a later sync "succeeds" over pages it dropped (why PostgreSQL panics instead of
 * retrying a failed fsync).
 *
 * Environment: SYNCFAULT_PATH, SYNCFAULT_TRIGGER, SYNCFAULT_LOG (optional: a file that gets
 * "fail <path>" for the failed sync).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_int failed;

/* Whether this sync of `fd` is the one to fail; logs it. */
static int should_fail(int fd) {
    const char *prefix = getenv("SYNCFAULT_PATH");
    const char *trigger = getenv("SYNCFAULT_TRIGGER");
    if (!prefix || !trigger || atomic_load(&failed) || access(trigger, F_OK) != 0) return 0;
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t length = readlink(link, path, sizeof path - 1);
    if (length < 0) return 0;
    path[length] = 0;
    if (strncmp(path, prefix, strlen(prefix)) != 0) return 0;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&failed, &expected, 1)) return 0;
    const char *log = getenv("SYNCFAULT_LOG");
    if (log) {
        FILE *file = fopen(log, "a");
        if (file) {
            fprintf(file, "fail %s\n", path);
            fclose(file);
        }
    }
    return 1;
}

int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    if (should_fail(fd)) {
        errno = EIO;
        return -1;
    }
    return real(fd);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    if (should_fail(fd)) {
        errno = EIO;
        return -1;
    }
    return real(fd);
}
