// libxml2 for ptfrag: the text writer (JUnit XML) and the schema validator (XSD self-check).
// pkg-config libxml-2.0 adds the include path; Debian: apt-get install libxml2-dev.
#ifndef PTFRAG_CLIBXML2_SHIM_H
#define PTFRAG_CLIBXML2_SHIM_H
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlwriter.h>
#include <libxml/xmlschemas.h>
#include <libxml/xmlerror.h>

/// xmlFree is a global function pointer (not concurrency-safe to read from Swift 6).
static inline void ptfrag_xml_free(void *p) { xmlFree(p); }
#endif
