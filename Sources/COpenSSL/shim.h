// The system OpenSSL (libssl-dev), used only to write PKCS#12 archives — a format with many interoperability
// details (PBES2/PBKDF2, MAC, bag attributes) that OpenSSL's PKCS12_create gets right for `openssl pkcs12`,
// Java and Windows. BoringSSL inside swift-nio-ssl and swift-crypto uses prefixed symbols, so both coexist.
#ifndef GATEHOUSE_COPENSSL_SHIM_H
#define GATEHOUSE_COPENSSL_SHIM_H
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

/// Builds a DER PKCS#12 (OpenSSL 3 defaults: AES-256-CBC with PBKDF2-HMAC-SHA256, SHA-256 MAC) holding the key,
/// the certificate (friendly name `name`) and the chain. Returns the length and sets *out (free with
/// gh_free), or -1.
static inline long gh_pkcs12_create(
    const unsigned char *cert, long cert_len, const unsigned char *const *chain, const long *chain_lens,
    int chain_count, const unsigned char *key, long key_len, const char *pass, const char *name, unsigned char **out)
{
    long result = -1;
    X509 *leaf = NULL;
    EVP_PKEY *pkey = NULL;
    STACK_OF(X509) *cas = NULL;
    PKCS12 *p12 = NULL;
    const unsigned char *p = cert;
    *out = NULL;
    if ((leaf = d2i_X509(NULL, &p, cert_len)) == NULL) goto done;
    p = key;
    if ((pkey = d2i_AutoPrivateKey(NULL, &p, key_len)) == NULL) goto done;
    if (X509_check_private_key(leaf, pkey) != 1) goto done;
    if ((cas = sk_X509_new_null()) == NULL) goto done;
    for (int i = 0; i < chain_count; i++) {
        const unsigned char *c = chain[i];
        X509 *x = d2i_X509(NULL, &c, chain_lens[i]);
        if (x == NULL || !sk_X509_push(cas, x)) { X509_free(x); goto done; }
    }
    if ((p12 = PKCS12_create(pass, name, pkey, leaf, cas, 0, 0, 0, 0, 0)) == NULL) goto done;
    int n = i2d_PKCS12(p12, out);
    if (n > 0) result = n;
done:
    PKCS12_free(p12);
    sk_X509_pop_free(cas, X509_free);
    EVP_PKEY_free(pkey);
    X509_free(leaf);
    ERR_clear_error();
    return result;
}

static inline void gh_free(void *p) { OPENSSL_free(p); }
#endif
