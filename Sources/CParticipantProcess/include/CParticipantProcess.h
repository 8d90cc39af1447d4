#ifndef C_PARTICIPANT_PROCESS_H
#define C_PARTICIPANT_PROCESS_H

/// Keeps the process's memory (connection tokens, participant tokens, passwords) out of core dumps:
/// RLIMIT_CORE set to 0 and the process marked non-dumpable (prctl PR_SET_DUMPABLE 0, which also
/// keeps other processes of its user from reading its memory through /proc or ptrace). In C
/// because prctl(2) is variadic, which Swift cannot call. Returns 0, or the errno of the step
/// that failed.
int participant_disable_core_dumps(void);

/// Whether the process is dumpable now (prctl PR_GET_DUMPABLE): 1 or 0, or -1 with errno set.
int participant_is_dumpable(void);

#endif
