/* A power cut for one SQLite database, as SQLite's own crash tests simulate it, for a real
 * process (LD_PRELOAD).
 *
 * The live files (POWERCUT_DATABASE, its -wal and its -journal) play the kernel's page cache:
 * every write reaches them at once. Beside each, in the folder POWERCUT_DISK, a file of the same
 * name plays the disk: only fsync and fdatasync bring it up to date, with the blocks written since
 * the file's last sync (and its size). A test that kills the process with SIGKILL and puts the
 * disk copies in place of the live files (the -shm file does not survive) sees what a power cut
 * would have left: nothing written after the last sync of each file.
 *
 * What it models, and what not: writes not yet synced are lost whole (none is torn or partly
 * kept; a kill during a sync leaves that sync partly done, as a cut during a real one may);
 * creating and removing a file reach the disk at once (a directory's own sync is not needed).
 *
 * Environment: POWERCUT_DATABASE (the database's path, as the process opens it), POWERCUT_DISK (an
 * existing folder for the disk copies), POWERCUT_LOG (optional: a file that gets one line per
 * sync of a tracked file, "sync <name> <blocks copied>").
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define BLOCK 512
#define TRACKED 3      /* the database, its -wal, its -journal */
#define MAX_FDS 4096

static const char *suffixes[TRACKED] = {"", "-wal", "-journal"};

struct tracked_file {
    char live[PATH_MAX];
    char disk[PATH_MAX];
    unsigned char *dirty;  /* one bit per BLOCK bytes written since the last sync */
    size_t dirty_bytes;    /* size of `dirty` */
    off_t truncated_from;  /* lowest size set by ftruncate since the last sync; -1: none */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int enabled;
static struct tracked_file files[TRACKED];
static signed char fd_file[MAX_FDS]; /* fd -> index in files + 1; 0: not tracked */
static FILE *sync_log;

static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_close)(int);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static int (*real_ftruncate)(int, off_t);
static int (*real_ftruncate64)(int, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_unlink)(const char *);

static void setup(void) {
    real_open = dlsym(RTLD_NEXT, "open");
    real_open64 = dlsym(RTLD_NEXT, "open64");
    real_openat = dlsym(RTLD_NEXT, "openat");
    real_close = dlsym(RTLD_NEXT, "close");
    real_write = dlsym(RTLD_NEXT, "write");
    real_pwrite = dlsym(RTLD_NEXT, "pwrite");
    real_pwrite64 = dlsym(RTLD_NEXT, "pwrite64");
    real_ftruncate = dlsym(RTLD_NEXT, "ftruncate");
    real_ftruncate64 = dlsym(RTLD_NEXT, "ftruncate64");
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_unlink = dlsym(RTLD_NEXT, "unlink");
    const char *database = getenv("POWERCUT_DATABASE");
    const char *disk = getenv("POWERCUT_DISK");
    if (database == NULL || disk == NULL) return;
    const char *base = strrchr(database, '/');
    base = base ? base + 1 : database;
    for (int i = 0; i < TRACKED; i++) {
        snprintf(files[i].live, PATH_MAX, "%s%s", database, suffixes[i]);
        snprintf(files[i].disk, PATH_MAX, "%s/%s%s", disk, base, suffixes[i]);
        files[i].truncated_from = -1;
    }
    const char *log = getenv("POWERCUT_LOG");
    if (log != NULL) {
        int fd = real_open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd >= 0) sync_log = fdopen(fd, "a");
    }
    enabled = 1;
}

static void init(void) { pthread_once(&once, setup); }

static int file_index(const char *path) {
    if (!enabled || path == NULL) return -1;
    for (int i = 0; i < TRACKED; i++)
        if (strcmp(path, files[i].live) == 0) return i;
    return -1;
}

/* Copies `from` to `to` whole (`to` replaced); a missing `from` leaves an empty `to`. */
static void copy_file(const char *from, const char *to) {
    int out = real_open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) return;
    int in = real_open(from, O_RDONLY | O_CLOEXEC);
    if (in >= 0) {
        char buffer[65536];
        ssize_t count;
        while ((count = read(in, buffer, sizeof buffer)) > 0) real_write(out, buffer, (size_t)count);
        real_close(in);
    }
    real_close(out);
}

/* A tracked file was opened as `fd`: its disk copy starts as the live file is now, if it has none. */
static void track(int fd, int index) {
    if (fd < 0 || fd >= MAX_FDS || index < 0) return;
    pthread_mutex_lock(&lock);
    struct stat st;
    if (stat(files[index].disk, &st) != 0) copy_file(files[index].live, files[index].disk);
    fd_file[fd] = (signed char)(index + 1);
    pthread_mutex_unlock(&lock);
}

static struct tracked_file *tracked(int fd) {
    if (!enabled || fd < 0 || fd >= MAX_FDS || fd_file[fd] == 0) return NULL;
    return &files[fd_file[fd] - 1];
}

static void mark_dirty(struct tracked_file *file, off_t offset, ssize_t count) {
    if (count <= 0) return;
    size_t first = (size_t)offset / BLOCK, last = ((size_t)offset + (size_t)count - 1) / BLOCK;
    pthread_mutex_lock(&lock);
    size_t needed = last / 8 + 1;
    if (needed > file->dirty_bytes) {
        size_t size = file->dirty_bytes ? file->dirty_bytes : 1024;
        while (size < needed) size *= 2;
        unsigned char *grown = realloc(file->dirty, size);
        if (grown == NULL) abort();
        memset(grown + file->dirty_bytes, 0, size - file->dirty_bytes);
        file->dirty = grown;
        file->dirty_bytes = size;
    }
    for (size_t block = first; block <= last; block++) file->dirty[block / 8] |= (unsigned char)(1u << (block % 8));
    pthread_mutex_unlock(&lock);
}

/* What a sync makes durable: the blocks written since the last one, and the file's size. */
static void sync_to_disk(int fd, struct tracked_file *file) {
    pthread_mutex_lock(&lock);
    struct stat st;
    if (fstat(fd, &st) != 0) { pthread_mutex_unlock(&lock); return; }
    int disk = real_open(file->disk, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (disk < 0) { pthread_mutex_unlock(&lock); return; }
    size_t blocks = ((size_t)st.st_size + BLOCK - 1) / BLOCK, copied = 0;
    size_t from_truncation = file->truncated_from >= 0 ? (size_t)file->truncated_from / BLOCK : blocks;
    char buffer[BLOCK];
    for (size_t block = 0; block < blocks; block++) {
        int dirty = block >= from_truncation
            || (block / 8 < file->dirty_bytes && (file->dirty[block / 8] & (1u << (block % 8))));
        if (!dirty) continue;
        ssize_t count = pread(fd, buffer, BLOCK, (off_t)(block * BLOCK));
        if (count > 0) real_pwrite(disk, buffer, (size_t)count, (off_t)(block * BLOCK));
        copied++;
    }
    real_ftruncate(disk, st.st_size);
    real_close(disk);
    if (file->dirty) memset(file->dirty, 0, file->dirty_bytes);
    file->truncated_from = -1;
    if (sync_log) {
        const char *name = strrchr(file->live, '/');
        fprintf(sync_log, "sync %s %zu\n", name ? name + 1 : file->live, copied);
        fflush(sync_log);
    }
    pthread_mutex_unlock(&lock);
}

static int open_mode_needed(int flags) { return (flags & O_CREAT) || ((flags & O_TMPFILE) == O_TMPFILE); }

/* The variadic open family: the mode is there only when the flags ask for one. */
#define OPEN_MODE(flags, mode) \
    mode_t mode = 0; \
    if (open_mode_needed(flags)) { va_list args; va_start(args, flags); mode = va_arg(args, mode_t); va_end(args); }

int open(const char *path, int flags, ...) {
    init();
    OPEN_MODE(flags, mode)
    int fd = real_open(path, flags, mode);
    track(fd, file_index(path));
    return fd;
}

int open64(const char *path, int flags, ...) {
    init();
    OPEN_MODE(flags, mode)
    int fd = real_open64(path, flags, mode);
    track(fd, file_index(path));
    return fd;
}

int openat(int dirfd, const char *path, int flags, ...) {
    init();
    OPEN_MODE(flags, mode)
    int fd = real_openat(dirfd, path, flags, mode);
    if (path[0] == '/') track(fd, file_index(path));
    return fd;
}

int close(int fd) {
    init();
    if (enabled && fd >= 0 && fd < MAX_FDS) fd_file[fd] = 0;
    return real_close(fd);
}

ssize_t write(int fd, const void *buffer, size_t count) {
    init();
    struct tracked_file *file = tracked(fd);
    if (file == NULL) return real_write(fd, buffer, count);
    off_t offset = lseek(fd, 0, SEEK_CUR);
    ssize_t written = real_write(fd, buffer, count);
    if (offset >= 0) mark_dirty(file, offset, written);
    return written;
}

static ssize_t positioned_write(ssize_t (*real)(int, const void *, size_t, off_t), int fd, const void *buffer, size_t count, off_t offset) {
    ssize_t written = real(fd, buffer, count, offset);
    struct tracked_file *file = tracked(fd);
    if (file) mark_dirty(file, offset, written);
    return written;
}

ssize_t pwrite(int fd, const void *buffer, size_t count, off_t offset) {
    init();
    return positioned_write(real_pwrite, fd, buffer, count, offset);
}

ssize_t pwrite64(int fd, const void *buffer, size_t count, off_t offset) {
    init();
    return positioned_write(real_pwrite64, fd, buffer, count, offset);
}

static int truncate_noted(int (*real)(int, off_t), int fd, off_t length) {
    int result = real(fd, length);
    struct tracked_file *file = result == 0 ? tracked(fd) : NULL;
    if (file == NULL) return result;
    pthread_mutex_lock(&lock);
    if (file->truncated_from < 0 || length < file->truncated_from) file->truncated_from = length;
    pthread_mutex_unlock(&lock);
    return result;
}

int ftruncate(int fd, off_t length) {
    init();
    return truncate_noted(real_ftruncate, fd, length);
}

int ftruncate64(int fd, off_t length) {
    init();
    return truncate_noted(real_ftruncate64, fd, length);
}

static int synced(int (*real)(int), int fd) {
    int result = real(fd);
    struct tracked_file *file = tracked(fd);
    if (file && result == 0) sync_to_disk(fd, file);
    return result;
}

int fsync(int fd) {
    init();
    return synced(real_fsync, fd);
}

int fdatasync(int fd) {
    init();
    return synced(real_fdatasync, fd);
}

int unlink(const char *path) {
    init();
    int result = real_unlink(path);
    int index = file_index(path);
    if (result == 0 && index >= 0) {
        pthread_mutex_lock(&lock);
        real_unlink(files[index].disk);
        if (files[index].dirty) memset(files[index].dirty, 0, files[index].dirty_bytes);
        files[index].truncated_from = -1;
        pthread_mutex_unlock(&lock);
    }
    return result;
}
