#ifndef GATEHOUSE_CPKCS11_SHIM_H
#define GATEHOUSE_CPKCS11_SHIM_H
/* The PKCS#11 (Cryptoki 2.40) types and constants from Debian's p11-kit headers, in the standard's own names
   (p11-kit's compatibility mode). No library is linked: a module (a .so an HSM vendor ships, or SoftHSM2) is loaded
   at run time with dlopen and used through the function list its C_GetFunctionList returns. */
#include <p11-kit/pkcs11.h>
#endif
