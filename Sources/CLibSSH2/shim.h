#ifndef GATEHOUSE_CLIBSSH2_SHIM_H
#define GATEHOUSE_CLIBSSH2_SHIM_H
#include <libssh2.h>

/* Function-like macros of libssh2.h are not imported by Swift: thin inline equivalents. */
static inline ssize_t gh_channel_read(LIBSSH2_CHANNEL *c, char *buf, size_t len) {
    return libssh2_channel_read_ex(c, 0, buf, len);
}
static inline ssize_t gh_channel_write(LIBSSH2_CHANNEL *c, const char *buf, size_t len) {
    return libssh2_channel_write_ex(c, 0, buf, len);
}
static inline int gh_session_disconnect(LIBSSH2_SESSION *s, const char *why) {
    return libssh2_session_disconnect_ex(s, SSH_DISCONNECT_BY_APPLICATION, why, "");
}
static inline int gh_userauth_publickey_fromfile(LIBSSH2_SESSION *s, const char *user, unsigned int userlen,
                                                 const char *privkey) {
    return libssh2_userauth_publickey_fromfile_ex(s, user, userlen, NULL, privkey, NULL);
}
#endif
