/* A self-signed certificate for development, made at start when wss:// has no
 * certificate configured: ECDSA P-256, SHA-256, valid 30 days, subjectAltName
 * with COMMON_NAME and 127.0.0.1/localhost. */
#pragma once

/* Returns 0 and g_malloc'd PEM strings, or a negative errno. */
int selfsigned_generate(const char *common_name, char **cert_pem, char **key_pem);
