#ifndef PREFECT_EXPORTER_CGNUTLS_H
#define PREFECT_EXPORTER_CGNUTLS_H
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#endif
