import Crypto
import _CryptoExtras
import X509
