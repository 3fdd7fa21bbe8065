#ifndef PREFECT_EXPORTER_CCRYPT_H
#define PREFECT_EXPORTER_CCRYPT_H
#include <crypt.h>
#endif
