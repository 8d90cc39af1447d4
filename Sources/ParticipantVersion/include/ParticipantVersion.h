#ifndef PARTICIPANT_VERSION_H
#define PARTICIPANT_VERSION_H

/// The version this build was made from (scripts/version, or PARTICIPANTD_VERSION when set),
/// handed in by Package.swift as a C define: Swift has no define that carries a value.
const char *participantd_version(void);

#endif
