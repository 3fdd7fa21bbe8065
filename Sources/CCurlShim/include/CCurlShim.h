#ifndef PREFECT_EXPORTER_CCURLSHIM_H
#define PREFECT_EXPORTER_CCURLSHIM_H

/*
 * Why this shim exists: curl_easy_setopt and curl_easy_getinfo are variadic, and Swift
 * cannot call variadic C functions. Each wrapper passes exactly one argument of one C type.
 */

#include <curl/curl.h>

typedef size_t (*pe_curl_data_callback)(char *data, size_t size, size_t nmemb, void *userdata);

CURLcode pe_curl_easy_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode pe_curl_easy_setopt_string(CURL *handle, CURLoption option, const char *value);
CURLcode pe_curl_easy_setopt_pointer(CURL *handle, CURLoption option, void *value);
CURLcode pe_curl_easy_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value);
CURLcode pe_curl_easy_setopt_data_callback(CURL *handle, CURLoption option, pe_curl_data_callback value);

CURLcode pe_curl_easy_getinfo_long(CURL *handle, CURLINFO info, long *value);
CURLcode pe_curl_easy_getinfo_double(CURL *handle, CURLINFO info, double *value);
CURLcode pe_curl_easy_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value);

#endif
