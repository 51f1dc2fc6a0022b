// The system OpenSSL (libssl-dev), used where swift-crypto has no API: writing PKCS#12 archives — a format with
// many interoperability details (PBES2/PBKDF2, MAC, bag attributes) that OpenSSL's PKCS12_create gets right for
// `openssl pkcs12`, Java and Windows — RSA-OAEP with any SHA-2 hash, a separate MGF1 hash and a label (KMIP's
// CS-AC profile; swift-crypto offers SHA-1/SHA-256 without labels) and AES-GCM with IVs other than 12 bytes and
// truncated tags (KMIP's CS-BC profile), Blowfish-CBC from the legacy provider (KMIP's ENCRYPT derivation), and the
// TLS client of ACME tls-alpn-01 validation (BoringSSL in swift-nio-ssl refuses an RSA server certificate without
// the digitalSignature key usage, which RFC 8737 allows and lego sends; OpenSSL leaves key usage to verification,
// which a self-signed challenge certificate does not get). BoringSSL inside swift-nio-ssl and
// swift-crypto uses prefixed symbols, so both coexist.
#ifndef GATEHOUSE_COPENSSL_SHIM_H
#define GATEHOUSE_COPENSSL_SHIM_H
#include <string.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
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

static inline const EVP_MD *gh_md(int code) {
    switch (code) {
    case 1: return EVP_sha1();
    case 224: return EVP_sha224();
    case 256: return EVP_sha256();
    case 384: return EVP_sha384();
    case 512: return EVP_sha512();
    default: return NULL;
    }
}

/// RSA-OAEP: encrypt with a public key (DER: SubjectPublicKeyInfo or PKCS#1 RSAPublicKey) or decrypt with a
/// private key (DER: PKCS#1 or PKCS#8). `md`/`mgf` are 1, 224, 256, 384 or 512 (SHA-1/SHA-2). Writes at most
/// `out_cap` bytes; returns the length or -1.
static inline long gh_rsa_oaep(
    int encrypt, const unsigned char *key, long key_len, int md, int mgf, const unsigned char *label, long label_len,
    const unsigned char *in, long in_len, unsigned char *out, long out_cap)
{
    long result = -1;
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    const unsigned char *p = key;
    const EVP_MD *md_hash = gh_md(md), *mgf_hash = gh_md(mgf);
    if (md_hash == NULL || mgf_hash == NULL) return -1;
    if (encrypt) {
        pkey = d2i_PUBKEY(NULL, &p, key_len);
        if (pkey == NULL) { p = key; pkey = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, key_len); }
    } else {
        pkey = d2i_AutoPrivateKey(NULL, &p, key_len);
    }
    if (pkey == NULL || EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) goto done;
    if ((ctx = EVP_PKEY_CTX_new(pkey, NULL)) == NULL) goto done;
    if ((encrypt ? EVP_PKEY_encrypt_init(ctx) : EVP_PKEY_decrypt_init(ctx)) <= 0) goto done;
    if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0) goto done;
    if (EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md_hash) <= 0 || EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, mgf_hash) <= 0) goto done;
    if (label_len > 0) {
        unsigned char *copy = OPENSSL_malloc(label_len);
        if (copy == NULL) goto done;
        memcpy(copy, label, label_len);
        if (EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, copy, (int)label_len) <= 0) { OPENSSL_free(copy); goto done; }
    }
    size_t n = (size_t)out_cap;
    if ((encrypt ? EVP_PKEY_encrypt(ctx, out, &n, in, (size_t)in_len) : EVP_PKEY_decrypt(ctx, out, &n, in, (size_t)in_len)) <= 0) goto done;
    result = (long)n;
done:
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return result;
}
/// RSA signatures (PKCS#1 v1.5 or PSS with MGF1 over the same hash) with SHA-1/224/256/384/512. Signing uses a salt
/// as long as the digest; verifying recovers the salt length from the signature (PSS signers choose it: the KMIP
/// CS-AC test cases use the maximum). Sign: returns the signature length written to `sig` or -1. Verify: 1 valid,
/// 0 invalid, -1 error.
static inline long gh_rsa_signature(
    int sign, const unsigned char *key, long key_len, int md, int pss, const unsigned char *msg, long msg_len,
    unsigned char *sig, long sig_len_or_cap)
{
    long result = -1;
    EVP_PKEY *pkey = NULL;
    EVP_MD_CTX *mctx = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    const unsigned char *p = key;
    const EVP_MD *hash = gh_md(md);
    if (hash == NULL) return -1;
    if (sign) {
        pkey = d2i_AutoPrivateKey(NULL, &p, key_len);
    } else {
        pkey = d2i_PUBKEY(NULL, &p, key_len);
        if (pkey == NULL) { p = key; pkey = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, key_len); }
    }
    if (pkey == NULL || EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) goto done;
    if ((mctx = EVP_MD_CTX_new()) == NULL) goto done;
    if ((sign ? EVP_DigestSignInit(mctx, &pctx, hash, NULL, pkey) : EVP_DigestVerifyInit(mctx, &pctx, hash, NULL, pkey)) != 1) goto done;
    if (pss) {
        if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0) goto done;
        if (EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, hash) <= 0) goto done;
        if (EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, sign ? RSA_PSS_SALTLEN_DIGEST : RSA_PSS_SALTLEN_AUTO) <= 0) goto done;
    } else if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0) {
        goto done;
    }
    if (sign) {
        size_t n = (size_t)sig_len_or_cap;
        if (EVP_DigestSign(mctx, sig, &n, msg, (size_t)msg_len) != 1) goto done;
        result = (long)n;
    } else {
        int r = EVP_DigestVerify(mctx, sig, (size_t)sig_len_or_cap, msg, (size_t)msg_len);
        result = r == 1 ? 1 : r == 0 ? 0 : 0;
    }
done:
    EVP_MD_CTX_free(mctx);
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return result;
}
/// AES-GCM with any IV length (1…128 bytes) and tag length (4…16). Encrypt: writes the ciphertext to `out` and the
/// tag to `tag`; decrypt: checks `tag` and writes the plaintext. Returns the output length or -1 (-2: bad tag).
static inline long gh_aes_gcm(
    int encrypt, const unsigned char *key, int key_len, const unsigned char *iv, int iv_len, const unsigned char *aad,
    long aad_len, const unsigned char *in, long in_len, unsigned char *out, unsigned char *tag, int tag_len)
{
    long result = -1;
    int n = 0, fin = 0;
    const EVP_CIPHER *cipher = key_len == 16 ? EVP_aes_128_gcm() : key_len == 24 ? EVP_aes_192_gcm() : key_len == 32 ? EVP_aes_256_gcm() : NULL;
    EVP_CIPHER_CTX *ctx = NULL;
    if (cipher == NULL || iv_len < 1 || iv_len > 128 || tag_len < 4 || tag_len > 16) return -1;
    if ((ctx = EVP_CIPHER_CTX_new()) == NULL) return -1;
    if (EVP_CipherInit_ex(ctx, cipher, NULL, NULL, NULL, encrypt) != 1) goto done;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, iv_len, NULL) != 1) goto done;
    if (EVP_CipherInit_ex(ctx, NULL, NULL, key, iv, encrypt) != 1) goto done;
    if (aad_len > 0 && EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1) goto done;
    n = 0;  /* the AAD update reports the AAD's length: none of it is output */
    if (in_len > 0 && EVP_CipherUpdate(ctx, out, &n, in, (int)in_len) != 1) goto done;
    if (!encrypt && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, tag_len, tag) != 1) goto done;
    if (EVP_CipherFinal_ex(ctx, out + n, &fin) != 1) { result = encrypt ? -1 : -2; goto done; }
    if (encrypt && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, tag_len, tag) != 1) goto done;
    result = n + fin;
done:
    EVP_CIPHER_CTX_free(ctx);
    ERR_clear_error();
    return result;
}
/// A streamed block-cipher operation (KMIP Encrypt/Decrypt with Init Indicator, Correlation Value, Final
/// Indicator): mode 1 CBC, 2 ECB, 6 CTR, 9 GCM; `padding` (PKCS#5) for CBC/ECB. Returns NULL on bad parameters.
static inline EVP_CIPHER_CTX *gh_stream_new(
    int encrypt, int mode, const unsigned char *key, int key_len, const unsigned char *iv, int iv_len, int padding,
    const unsigned char *aad, long aad_len)
{
    const EVP_CIPHER *cipher = NULL;
    int n = 0;
    EVP_CIPHER_CTX *ctx = NULL;
    switch (mode) {
    case 1: cipher = key_len == 16 ? EVP_aes_128_cbc() : key_len == 24 ? EVP_aes_192_cbc() : key_len == 32 ? EVP_aes_256_cbc() : NULL; break;
    case 2: cipher = key_len == 16 ? EVP_aes_128_ecb() : key_len == 24 ? EVP_aes_192_ecb() : key_len == 32 ? EVP_aes_256_ecb() : NULL; break;
    case 6: cipher = key_len == 16 ? EVP_aes_128_ctr() : key_len == 24 ? EVP_aes_192_ctr() : key_len == 32 ? EVP_aes_256_ctr() : NULL; break;
    case 9: cipher = key_len == 16 ? EVP_aes_128_gcm() : key_len == 24 ? EVP_aes_192_gcm() : key_len == 32 ? EVP_aes_256_gcm() : NULL; break;
    default: return NULL;
    }
    if (cipher == NULL) return NULL;
    if (mode == 9 ? (iv_len < 1 || iv_len > 128) : mode == 2 ? 0 : iv_len != 16) return NULL;
    if ((ctx = EVP_CIPHER_CTX_new()) == NULL) return NULL;
    if (EVP_CipherInit_ex(ctx, cipher, NULL, NULL, NULL, encrypt) != 1) goto fail;
    if (mode == 9 && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, iv_len, NULL) != 1) goto fail;
    if (EVP_CipherInit_ex(ctx, NULL, NULL, key, mode == 2 ? NULL : iv, encrypt) != 1) goto fail;
    if ((mode == 1 || mode == 2) && EVP_CIPHER_CTX_set_padding(ctx, padding) != 1) goto fail;
    if (mode == 9 && aad_len > 0 && EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1) goto fail;
    ERR_clear_error();
    return ctx;
fail:
    EVP_CIPHER_CTX_free(ctx);
    ERR_clear_error();
    return NULL;
}
/// Feeds `in`; writes what is ready to `out` (room for in_len + 16). Returns its length or -1.
static inline long gh_stream_update(EVP_CIPHER_CTX *ctx, const unsigned char *in, long in_len, unsigned char *out)
{
    int n = 0;
    if (in_len > 0 && EVP_CipherUpdate(ctx, out, &n, in, (int)in_len) != 1) { ERR_clear_error(); return -1; }
    return n;
}
/// Ends the stream: writes the rest (room for 16 bytes); GCM encryption writes the tag, GCM decryption checks it.
/// Returns the rest's length, -1 on error, -2 when the tag (or the padding) does not check out.
static inline long gh_stream_final(EVP_CIPHER_CTX *ctx, int encrypt, int gcm, unsigned char *out, unsigned char *tag, int tag_len)
{
    int n = 0;
    if (gcm && !encrypt && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, tag_len, tag) != 1) { ERR_clear_error(); return -1; }
    if (EVP_CipherFinal_ex(ctx, out, &n) != 1) { ERR_clear_error(); return -2; }
    if (gcm && encrypt && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, tag_len, tag) != 1) { ERR_clear_error(); return -1; }
    return n;
}
static inline void gh_stream_free(EVP_CIPHER_CTX *ctx) { EVP_CIPHER_CTX_free(ctx); }

/// A private library context with OpenSSL's legacy provider (Blowfish lives there) and the default one; NULL when
/// the legacy module is not installed. The process-wide default context is left as it is.
static inline OSSL_LIB_CTX *gh_legacy_context(void)
{
    OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();
    if (ctx == NULL) return NULL;
    if (OSSL_PROVIDER_load(ctx, "legacy") == NULL || OSSL_PROVIDER_load(ctx, "default") == NULL) {
        OSSL_LIB_CTX_free(ctx);
        ERR_clear_error();
        return NULL;
    }
    return ctx;
}
/// Blowfish-CBC (8-byte IV, key of key_len bytes) in `ctx`, PKCS#5 padding when `pad`. `out` has room for
/// in_len + 8. Returns the output length, or -1 (no cipher, a bad key or IV, unpadded input not whole blocks, or a
/// bad padding when decrypting).
static inline long gh_bf_cbc(
    OSSL_LIB_CTX *libctx, int encrypt, const unsigned char *key, int key_len, const unsigned char *iv, int pad,
    const unsigned char *in, long in_len, unsigned char *out)
{
    long result = -1;
    int n = 0, fin = 0;
    EVP_CIPHER *cipher = EVP_CIPHER_fetch(libctx, "BF-CBC", NULL);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (cipher == NULL || ctx == NULL) goto done;
    if (EVP_CipherInit_ex2(ctx, cipher, NULL, NULL, encrypt, NULL) != 1) goto done;
    if (EVP_CIPHER_CTX_set_key_length(ctx, key_len) != 1) goto done;
    if (EVP_CipherInit_ex2(ctx, NULL, key, iv, encrypt, NULL) != 1) goto done;
    if (EVP_CIPHER_CTX_set_padding(ctx, pad) != 1) goto done;
    if (in_len > 0 && EVP_CipherUpdate(ctx, out, &n, in, (int)in_len) != 1) goto done;
    if (EVP_CipherFinal_ex(ctx, out + n, &fin) != 1) goto done;
    result = n + fin;
done:
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(cipher);
    ERR_clear_error();
    return result;
}

/// The ChaCha20 stream cipher with a 32-byte key and the state's last 16 bytes (block counter and nonce, as
/// EVP_chacha20 takes them) (swift-crypto has the AEAD only; KMIP 2.1 also uses the bare stream cipher). Encryption
/// and decryption are the same. Returns 0 or -1.
static inline int gh_chacha20(const unsigned char *key, const unsigned char *iv,
    const unsigned char *in, long in_len, unsigned char *out)
{
    int n = 0, ok = -1;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) return -1;
    if (EVP_EncryptInit_ex(ctx, EVP_chacha20(), NULL, key, iv) != 1) goto done;
    if (in_len > 0 && EVP_EncryptUpdate(ctx, out, &n, in, (int)in_len) != 1) goto done;
    ok = n == in_len ? 0 : -1;
done:
    EVP_CIPHER_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

/// A TLS client over memory buffers (the caller moves the bytes): TLS 1.2 or later, SNI `server_name` (may be
/// empty), ALPN `alpn` (wire format), the peer's certificate accepted as it is. NULL on failure.
typedef struct gh_tls { SSL_CTX *ctx; SSL *ssl; BIO *in; BIO *out; } gh_tls;
static inline void gh_tls_free(gh_tls *t)
{
    if (t == NULL) return;
    SSL_free(t->ssl); /* frees both BIOs */
    SSL_CTX_free(t->ctx);
    free(t);
    ERR_clear_error();
}
static inline gh_tls *gh_tls_client_new(const char *server_name, const unsigned char *alpn, unsigned alpn_len)
{
    gh_tls *t = calloc(1, sizeof *t);
    if (t == NULL) return NULL;
    if ((t->ctx = SSL_CTX_new(TLS_client_method())) == NULL) goto fail;
    if (SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION) != 1) goto fail;
    SSL_CTX_set_verify(t->ctx, SSL_VERIFY_NONE, NULL);
    if ((t->ssl = SSL_new(t->ctx)) == NULL) goto fail;
    t->in = BIO_new(BIO_s_mem());
    t->out = BIO_new(BIO_s_mem());
    if (t->in == NULL || t->out == NULL) { BIO_free(t->in); BIO_free(t->out); t->in = t->out = NULL; goto fail; }
    SSL_set_bio(t->ssl, t->in, t->out);
    SSL_set_connect_state(t->ssl);
    if (server_name != NULL && server_name[0] != 0 && SSL_set_tlsext_host_name(t->ssl, server_name) != 1) goto fail;
    if (alpn_len > 0 && SSL_set_alpn_protos(t->ssl, alpn, alpn_len) != 0) goto fail;
    return t;
fail:
    gh_tls_free(t);
    return NULL;
}
/// Feeds bytes received from the server.
static inline int gh_tls_feed(gh_tls *t, const unsigned char *in, int in_len)
{
    return in_len <= 0 ? 0 : BIO_write(t->in, in, in_len) == in_len ? 0 : -1;
}
/// Advances the handshake: 1 done, 0 needs more bytes from the server, -1 failed (the reason is in `why`).
static inline int gh_tls_handshake(gh_tls *t, char *why, int why_cap)
{
    int r = SSL_do_handshake(t->ssl);
    if (r == 1) return 1;
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
    unsigned long code = ERR_get_error();
    if (code != 0) ERR_error_string_n(code, why, (size_t)why_cap);
    else snprintf(why, (size_t)why_cap, "TLS handshake failed (SSL error %d)", e);
    ERR_clear_error();
    return -1;
}
/// Moves up to `cap` bytes that are ready for the server into `out`; returns how many.
static inline int gh_tls_drain(gh_tls *t, unsigned char *out, int cap)
{
    int n = BIO_read(t->out, out, cap);
    return n > 0 ? n : 0;
}
/// The negotiated ALPN protocol (not NUL-terminated) and its length; 0 when none.
static inline unsigned gh_tls_alpn(gh_tls *t, const unsigned char **data)
{
    unsigned len = 0;
    *data = NULL;
    SSL_get0_alpn_selected(t->ssl, data, &len);
    return len;
}
/// The server's certificate (DER) into *out (free with gh_free); returns its length, or -1.
static inline long gh_tls_peer_certificate(gh_tls *t, unsigned char **out)
{
    *out = NULL;
    X509 *x = SSL_get1_peer_certificate(t->ssl);
    if (x == NULL) return -1;
    int n = i2d_X509(x, out);
    X509_free(x);
    return n > 0 ? n : -1;
}
/// The negotiated protocol version's name (e.g. "TLSv1.3").
static inline const char *gh_tls_version(gh_tls *t) { return SSL_get_version(t->ssl); }
#endif
