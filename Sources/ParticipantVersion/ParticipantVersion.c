#include "ParticipantVersion.h"

#ifndef PARTICIPANTD_VERSION
#error "PARTICIPANTD_VERSION is set by Package.swift"
#endif

const char *participantd_version(void) {
    return PARTICIPANTD_VERSION;
}
