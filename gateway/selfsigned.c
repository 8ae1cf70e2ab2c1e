/* Self-signed development certificate.  See selfsigned.h. */
#include "gateway/selfsigned.h"

#include <errno.h>
#include <glib.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define VALID_DAYS 30

static char *bio_to_string(BIO *bio)
{
  char *data = NULL;
  long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? g_strndup(data, (gsize)n) : NULL;
}

static int add_ext(X509 *cert, int nid, const char *value)
{
  X509V3_CTX ctx;
  X509_EXTENSION *ext;

  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
  ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
  if (!ext)
    return -EINVAL;
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  return 0;
}

int selfsigned_generate(const char *common_name, char **cert_pem, char **key_pem)
{
  EVP_PKEY *key = EVP_EC_gen("P-256");
  X509 *cert = X509_new();
  BIO *cbio = BIO_new(BIO_s_mem()), *kbio = BIO_new(BIO_s_mem());
  unsigned char serial[16];
  BIGNUM *bn = NULL;
  X509_NAME *name;
  g_autofree char *san = NULL;
  int r = -EINVAL;

  if (!key || !cert || !cbio || !kbio)
    goto out;
  if (RAND_bytes(serial, sizeof serial) != 1)
    goto out;
  serial[0] &= 0x7f; /* a positive serial */
  bn = BN_bin2bn(serial, sizeof serial, NULL);
  if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)))
    goto out;
  X509_set_version(cert, 2);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), (long)VALID_DAYS * 24 * 3600);
  X509_set_pubkey(cert, key);

  name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"rtcsipd development", -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)common_name, -1, -1, 0);
  X509_set_issuer_name(cert, name);

  if (g_hostname_is_ip_address(common_name))
    san = g_strdup_printf("IP:%s,DNS:localhost,IP:127.0.0.1", common_name);
  else
    san = g_strdup_printf("DNS:%s,DNS:localhost,IP:127.0.0.1", common_name);
  if (add_ext(cert, NID_subject_alt_name, san) < 0 ||
      add_ext(cert, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
      add_ext(cert, NID_ext_key_usage, "serverAuth") < 0)
    goto out;
  if (!X509_sign(cert, key, EVP_sha256()))
    goto out;

  if (!PEM_write_bio_X509(cbio, cert) || !PEM_write_bio_PrivateKey(kbio, key, NULL, NULL, 0, NULL, NULL))
    goto out;
  *cert_pem = bio_to_string(cbio);
  *key_pem = bio_to_string(kbio);
  if (!*cert_pem || !*key_pem) {
    g_clear_pointer(cert_pem, g_free);
    g_clear_pointer(key_pem, g_free);
    goto out;
  }
  r = 0;
out:
  BN_free(bn);
  BIO_free(cbio);
  BIO_free(kbio);
  X509_free(cert);
  EVP_PKEY_free(key);
  return r;
}
