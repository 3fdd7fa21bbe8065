#ifndef PREFECT_EXPORTER_CCURL_H
#define PREFECT_EXPORTER_CCURL_H
#include <curl/curl.h>
#endif
